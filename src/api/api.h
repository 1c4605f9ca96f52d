/* api.h - the route table and the handlers that need no database. */
#ifndef NP_API_H
#define NP_API_H

#include <stddef.h>

#include "router.h"

/* Handlers of api_books.c. */
void api_books_list(struct np_request *req, struct np_response *resp);
void api_book_get(struct np_request *req, struct np_response *resp);
void api_passage_get(struct np_request *req, struct np_response *resp);

/* Handlers of api_sessions.c (issue 7, h7c): chat sessions, messages, feedback. */
void api_session_create(struct np_request *req, struct np_response *resp);
void api_session_delete(struct np_request *req, struct np_response *resp);
void api_messages_list(struct np_request *req, struct np_response *resp);
void api_message_post(struct np_request *req, struct np_response *resp);
void api_feedback_post(struct np_request *req, struct np_response *resp);

/* The application's routes. */
const struct np_route *api_routes(size_t *n);

#endif
