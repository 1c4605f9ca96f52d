/* SPDX-License-Identifier: PostgreSQL */
/* version.h - the one place the version string comes from. */
#ifndef NP_VERSION_H
#define NP_VERSION_H
#include "config.h"
#define NP_VERSION PACKAGE_VERSION
#define NP_NAME "neonpool"
#endif
