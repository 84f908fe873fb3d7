/* link_publish.h - put a link bundle where recipients' browsers will find it:
 * the local store, or a remote viewer via [link] upload_url.  Called before
 * any notification leaves; a failure means no link recipient gets anything
 * (fail closed).  Also feeds the outbox page and takes links back when the
 * message as a whole was refused. */
#ifndef SP_LINK_PUBLISH_H
#define SP_LINK_PUBLISH_H

#include "config.h"
#include "link_copy.h"
#include "link_store.h"
#include "message.h"

/* Returns 0, or -1 with err set (then nothing was published). */
int link_publish(const struct sp_config *cfg, struct link_store *store, const struct sp_link_bundle *b,
                 char *err, size_t errsz);
/* The message was not accepted: the links must not outlive it. */
void link_unpublish(const struct sp_config *cfg, struct link_store *store, const struct sp_link_bundle *b);
/* Record the message on the loopback outbox page (memory only). */
void link_outbox_record(const struct sp_envelope *env, const struct sp_link_bundle *b, const char *subject);

#endif
