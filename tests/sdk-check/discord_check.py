"""discord.py against the fake Discord: its own HTTP client (Route.BASE pointed at the fake)
and models, for the REST calls threadsmith makes. The gateway is not exercised here."""

import asyncio

import discord
from discord.http import Route

from checks import check, done, env, step

api = env("DISCORD_API_URL")
token = env("DISCORD_TOKEN")
channel_id = int(env("DISCORD_CHANNEL").split("=")[0])
user_id = int(env("DISCORD_USER").split("=")[0])
guild_id = int(env("DISCORD_GUILD_ID"))
human_message = int(env("DISCORD_MESSAGE").split("=")[1])
Route.BASE = api
NONE = discord.AllowedMentions.none()


async def araises(what, exc_type, coro, pred=lambda e: True):
    try:
        await coro
    except exc_type as e:
        check(what, pred(e), f"{type(e).__name__}: status {getattr(e, 'status', '?')} code {getattr(e, 'code', '?')}: {e}")
        return
    except Exception as e:  # noqa: BLE001
        check(what, False, f"raised {type(e).__name__} instead of {exc_type.__name__}: {e}")
        return
    check(what, False, f"did not raise {exc_type.__name__}")


def code(status, number):
    return lambda e: e.status == status and e.code == number


async def astep(what, coro):
    try:
        value = await coro
        check(what, True)
        return value
    except Exception as e:  # noqa: BLE001
        check(what, False, f"{type(e).__name__}: {e}")
        return None


async def main():
    print("discord.py", discord.__version__, "->", api)
    client = discord.Client(intents=discord.Intents.default())
    await araises("a bad token: LoginFailure", discord.LoginFailure, client.login("not-the-token"))
    await client.close()
    client = discord.Client(intents=discord.Intents.default())
    await astep("login (GET /users/@me)", client.login(token))
    app = await astep("application_info parses as AppInfo", client.application_info())
    if app:
        check("the application's flags are there", app.flags is not None)

    channel = await astep("fetch_channel parses as a TextChannel", client.fetch_channel(channel_id))
    if not isinstance(channel, discord.TextChannel):
        check("the seeded channel is a text channel", False, repr(channel))
        await client.close()
        return
    await araises("fetch_channel of none: NotFound 10003", discord.NotFound, client.fetch_channel(1), code(404, 10003))

    sent = await astep("send parses as a Message", channel.send("hello **there**", allowed_mentions=NONE))
    if sent:
        check("the message is the bot's", sent.author.id == client.user.id and sent.author.bot)
        edited = await astep("edit", sent.edit(content="edited", allowed_mentions=NONE))
        if edited:
            check("the edit shows edited_at", edited.edited_at is not None and edited.content == "edited")
    await araises(
        "send of 2,001 characters: HTTPException 400 code 50035",
        discord.HTTPException,
        channel.send("x" * 2001),
        code(400, 50035),
    )
    await araises(
        "an empty message: HTTPException 400 code 50006",
        discord.HTTPException,
        client.http.request(Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id), json={}),
        code(400, 50006),
    )

    human = await astep("fetch_message of a member's message", channel.fetch_message(human_message))
    if human:
        await araises(
            "edit of a member's message: Forbidden 50005",
            discord.Forbidden,
            client.http.request(
                Route("PATCH", "/channels/{channel_id}/messages/{message_id}", channel_id=channel_id, message_id=human_message),
                json={"content": "mine now"},
            ),
            code(403, 50005),
        )
        await astep("add_reaction", human.add_reaction("👀"))
        await astep("remove own reaction", human.remove_reaction("👀", client.user))
        thread = await astep(
            "create_thread from a message parses as a Thread",
            human.create_thread(name="threadsmith", auto_archive_duration=1440),
        )
        if thread:
            check("the thread has the message's id and the channel as parent", thread.id == human.id and thread.parent_id == channel_id)
            await araises(
                "a second thread on the message: HTTPException 400 code 160004",
                discord.HTTPException,
                human.create_thread(name="again"),
                code(400, 160004),
            )
            await astep("send in the thread", thread.send("in the thread", allowed_mentions=NONE))
            fetched = await astep("fetch_channel of the thread parses as a Thread", client.fetch_channel(thread.id))
            check("the fetched thread is a Thread", isinstance(fetched, discord.Thread), repr(fetched))
            history = await astep("history of the thread", _history(thread))
            if history is not None:
                check("the thread's history has the post", any(m.content == "in the thread" for m in history))
    await araises(
        "add_reaction on no message: NotFound 10008",
        discord.NotFound,
        client.http.add_reaction(channel_id, 1, "👀"),
        code(404, 10008),
    )
    await araises(
        "add_reaction in no channel: NotFound 10003",
        discord.NotFound,
        client.http.add_reaction(1, 1, "👀"),
        code(404, 10003),
    )
    member = await astep("get_member (raw)", client.http.get_member(guild_id, user_id))
    if member:
        check("the member has its user and roles", member["user"]["id"] == str(user_id) and "roles" in member)
    await araises(
        "get_member of no one: NotFound 10007",
        discord.NotFound,
        client.http.get_member(guild_id, 1),
        code(404, 10007),
    )
    await client.close()


async def _history(channel):
    return [m async for m in channel.history(limit=100)]


asyncio.run(main())
done("discord")
