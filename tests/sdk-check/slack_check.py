"""slack_sdk's WebClient against the fake Slack: the Web API methods threadsmith calls."""

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import Block

from checks import check, done, env, raises, step

api = env("SLACK_API_URL")
# As a real client does: a 429 is waited out for its Retry-After (the fake paces a channel's
# posts as Slack does), except in the flood check below.
client = WebClient(token=env("SLACK_BOT_TOKEN"), base_url=api, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)])
impatient = WebClient(token=env("SLACK_BOT_TOKEN"), base_url=api)
bot_user = env("SLACK_BOT_USER_ID")
human = env("SLACK_USER").split("=")[0]
channel, human_ts = env("SLACK_MESSAGE").split("=")


def code(name, status=200):
    return lambda e: e.response["error"] == name and e.response.status_code == status


print("slack_sdk", __import__("slack_sdk").version.__version__, "->", api)

auth = step("auth.test", client.auth_test)
if auth:
    check("auth.test names the bot", auth["user_id"] == bot_user and auth["bot_id"], auth.data)

blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]
posted = step(
    "chat.postMessage in a thread with blocks",
    lambda: client.chat_postMessage(
        channel=channel, thread_ts=human_ts, text="hello", blocks=blocks, unfurl_links=False
    ),
)
if posted:
    m = posted["message"]
    check("chat.postMessage answers channel, ts and the message", posted["channel"] == channel and m["ts"] == posted["ts"])
    check("the posted message is the bot's", m.get("bot_id") and m.get("user") == bot_user, m)
    check("its thread_ts is the parent's", m.get("thread_ts") == human_ts, m)
    step("its blocks parse as slack_sdk Blocks", lambda: [Block.parse(b) for b in m["blocks"]])
    ts = posted["ts"]
    updated = step(
        "chat.update",
        lambda: client.chat_update(channel=channel, ts=ts, text="edited", blocks=blocks),
    )
    if updated:
        check("chat.update answers channel, ts and text", updated["ts"] == ts and updated["text"] == "edited")
    step(
        "chat.getPermalink",
        lambda: check(
            "the permalink of a reply names its thread",
            f"thread_ts={human_ts}" in client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"],
        ),
    )
    raises(
        "chat.update of a human's message: cant_update_message",
        SlackApiError,
        lambda: client.chat_update(channel=channel, ts=human_ts, text="x"),
        code("cant_update_message"),
    )

step("chat.postEphemeral", lambda: client.chat_postEphemeral(channel=channel, user=human, text="psst", thread_ts=human_ts))
step("reactions.add", lambda: client.reactions_add(channel=channel, timestamp=human_ts, name="eyes"))
raises(
    "reactions.add twice: already_reacted",
    SlackApiError,
    lambda: client.reactions_add(channel=channel, timestamp=human_ts, name="eyes"),
    code("already_reacted"),
)
step("reactions.remove", lambda: client.reactions_remove(channel=channel, timestamp=human_ts, name="eyes"))
raises(
    "reactions.remove twice: no_reaction",
    SlackApiError,
    lambda: client.reactions_remove(channel=channel, timestamp=human_ts, name="eyes"),
    code("no_reaction"),
)
raises(
    "reactions.add on a message that is not there: message_not_found",
    SlackApiError,
    lambda: client.reactions_add(channel=channel, timestamp="1.000001", name="eyes"),
    code("message_not_found"),
)

def read_thread():
    # The SDK's iteration reuses one response object: read each page as it comes.
    pages, msgs = 0, []
    for page in client.conversations_replies(channel=channel, ts=human_ts, limit=1):
        pages += 1
        msgs.extend(page["messages"])
    return pages, msgs


read = step("conversations.replies, one message a page (the SDK follows next_cursor)", read_thread)
if read:
    pages, msgs = read
    check("every page answered, the thread read whole", pages == len(msgs) >= 2 and msgs[0]["ts"] == human_ts, msgs)
    check("the parent counts its replies", msgs[0].get("reply_count") == len(msgs) - 1, msgs[0])
raises(
    "conversations.replies of no thread: thread_not_found",
    SlackApiError,
    lambda: client.conversations_replies(channel=channel, ts="1.000001"),
    code("thread_not_found"),
)

info = step("users.info", lambda: client.users_info(user=human))
if info:
    check("users.info has the profile", info["user"]["id"] == human and "display_name" in info["user"]["profile"])
raises("users.info of nobody: user_not_found", SlackApiError, lambda: client.users_info(user="U999"), code("user_not_found"))
raises(
    "usergroups.users.list of no group: no_such_subteam",
    SlackApiError,
    lambda: client.usergroups_users_list(usergroup="S999"),
    code("no_such_subteam"),
)
raises(
    "views.open with a stale trigger: invalid_trigger_id",
    SlackApiError,
    lambda: client.views_open(trigger_id="123.456.abc", view={"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}),
    code("invalid_trigger_id"),
)

uploaded = step(
    "files_upload_v2 (getUploadURLExternal, the upload, completeUploadExternal)",
    lambda: client.files_upload_v2(
        channel=channel, thread_ts=human_ts, filename="fix.diff", content="--- a\n+++ b\n", title="The diff"
    ),
)
if uploaded:
    check("the uploaded file has its title", uploaded["file"]["title"] == "The diff", uploaded.data)

raises(
    "a bad token: invalid_auth",
    SlackApiError,
    lambda: WebClient(token="xoxb-wrong", base_url=api).auth_test(),
    code("invalid_auth"),
)
raises(
    "no token: not_authed",
    SlackApiError,
    lambda: WebClient(base_url=api).auth_test(),
    code("not_authed"),
)
raises(
    "51 blocks: invalid_blocks",
    SlackApiError,
    lambda: client.chat_postMessage(channel=channel, text="x", blocks=blocks * 51),
    code("invalid_blocks"),
)
raises(
    "a section of 3,001 characters: invalid_blocks",
    SlackApiError,
    lambda: client.chat_postMessage(
        channel=channel, text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    ),
    code("invalid_blocks"),
)
raises(
    "chat.postMessage without text or blocks: no_text",
    SlackApiError,
    lambda: client.chat_postMessage(channel=channel, text=""),
    code("no_text"),
)
raises(
    "chat.postMessage to a channel that does not exist: channel_not_found",
    SlackApiError,
    lambda: client.chat_postMessage(channel="CNOWHERE", text="hi"),
    code("channel_not_found"),
)


def flood():
    for i in range(10):
        impatient.chat_postMessage(channel=channel, text=f"flood {i}")


raises(
    "chat.postMessage over a channel's pace: HTTP 429 ratelimited with Retry-After",
    SlackApiError,
    flood,
    lambda e: code("ratelimited", 429)(e) and int(e.response.headers.get("Retry-After", "0")) >= 1,
)
done("slack")
