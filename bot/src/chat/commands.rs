//! The command parser: what users write to the bot, as typed values.
//!
//! Pure: no Slack or Discord types, no I/O. Three ways in: a mention of the bot
//! ([`parse_mention`]), a bare trigger phrase at the start of a line ([`parse_phrase`]) and a
//! slash command's text ([`parse_slash`]). Mentions and phrases inside code or quotes never
//! trigger. Markdown structure comes from pulldown-cmark, plus two chat rules it does not know:
//! quotes (`>`, or `&gt;` as Slack sends it) cover one line, or the rest of the message after
//! `>>>`; and Slack's ```` ``` ```` blocks need not start or end a line.
//!
//! Options are `key=value` words outside code: `repo=`, `base=` and `attempts=` wherever they
//! appear. A word close to one of them (`rpeo=`, `branch=`) is an error with a hint; any other
//! `key=value` (`when x=1`) is prose.

use std::ops::Range;

use pulldown_cmark::{Event, Parser, Tag};

/// What a mention of the bot asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `fix this: <instructions> [options]`: start a task from the thread.
    Fix(FixArgs),
    /// `plan [options]`: propose a plan for the thread before any rollout.
    Plan(FixArgs),
    /// `help`, or a mention with no text.
    Help,
    /// `status`: the tasks of this channel.
    Status,
}

/// The arguments of a task request. `None` everywhere means "decide from the thread and config".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixArgs {
    /// Free text after the command, options removed, as received (still Slack-escaped).
    pub instructions: Option<String>,
    /// `repo=`: `owner/name` or a clone URL.
    pub repo: Option<String>,
    /// `base=`: the ref to start from.
    pub base: Option<String>,
    /// `attempts=`: how many rollouts, 1 to 16.
    pub attempts: Option<u32>,
}

/// What a slash command's text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/fix <description>`: a task from the text alone; `instructions` is the description.
    Describe(FixArgs),
    /// `/fix <thread link> [instructions] [options]`: a task from an existing thread.
    FromThread { link: ThreadLink, args: FixArgs },
    /// `/fix help`, or no text.
    Help,
    /// `/fix status`.
    Status,
    /// `/fix repo`: show the channel's default repository.
    ShowRepo,
    /// `/fix repo <owner/name>`: set the channel's default repository.
    SetRepo(String),
}

/// A link to a chat thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadLink {
    /// `ts` is the thread's root (`thread_ts` when the link points at a reply).
    Slack { channel: String, ts: String },
    /// The ids of `discord.com/channels/<guild>/<channel>/<message>`.
    Discord {
        guild: String,
        channel: String,
        message: String,
    },
}

/// A user's mistake. `Display` is a chat-ready Markdown sentence, to post back as is.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// An unknown word after the mention.
    #[error("I don't know the command `{}`.{} Try `@threadsmith help`.", shown(.word), hint(.suggestion, ""))]
    UnknownCommand {
        word: String,
        suggestion: Option<&'static str>,
    },
    /// A `key=value` close to a known option (a typo or a synonym).
    #[error("I don't know the option `{}=`.{} The options are `repo=`, `base=` and `attempts=`.", shown(.key), hint(.suggestion, "="))]
    UnknownOption {
        key: String,
        suggestion: Option<&'static str>,
    },
    /// A known option with a value it cannot take.
    #[error("`{key}={}` won't do: I need {expected}.", shown(.value))]
    BadValue {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The same option twice.
    #[error("You gave `{key}=` twice; please give it once.")]
    DuplicateOption { key: &'static str },
    /// `from #k` whose `k` is no rollout number.
    #[error("`from #{}` is not a rollout number: say `from #2` to start from rollout 2.", shown(.0))]
    BadFrom(String),
    /// A slash command with options but no description or link.
    #[error("Tell me what to fix: describe the problem, or paste a link to the thread.")]
    NothingToDo,
}

/// A user's word for an error message: no backticks to break out of code, not too long.
fn shown(s: &str) -> String {
    let s = s.replace('`', "'");
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn hint(suggestion: &Option<&'static str>, tail: &str) -> String {
    suggestion.map_or_else(String::new, |s| format!(" Did you mean `{s}{tail}`?"))
}

const VERBS: [&str; 4] = ["fix", "plan", "help", "status"];
const OPTIONS: [&str; 3] = ["repo", "base", "attempts"];
/// Other words people use for an option, suggested like typos.
const ALIASES: [(&str, &str); 4] = [
    ("branch", "base"),
    ("ref", "base"),
    ("tries", "attempts"),
    ("repository", "repo"),
];
const DISCORD: [&str; 4] = [
    "discord.com",
    "discordapp.com",
    "ptb.discord.com",
    "canary.discord.com",
];
/// Byte ranges of a message.
type Spans = [Range<usize>];

/// Edit distance counting an adjacent transposition as one edit (`fxi` → `fix` is 1).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d: Vec<Vec<usize>> = (0..=a.len()).map(|i| (i..=i + b.len()).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The closest known word: at most 1 edit away for words of up to 4 letters, else 2.
fn suggest(word: &str, known: &[&'static str]) -> Option<&'static str> {
    let word = word.to_lowercase();
    let len = word.chars().count();
    let max = if len <= 4 { 1 } else { 2 };
    // Words whose lengths differ by more than `max` are further apart than that: skip them
    // (and the quadratic distance of a huge word).
    let near = known
        .iter()
        .filter(|k| len.abs_diff(k.chars().count()) <= max)
        .map(|k| (distance(&word, k), *k));
    near.filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `s` with every char but newlines turned into spaces, keeping byte offsets.
fn blank(s: &str) -> String {
    let spaces = |c: char| std::iter::repeat_n(if c == '\n' { c } else { ' ' }, c.len_utf8());
    s.chars().flat_map(spaces).collect()
}

/// Byte ranges of `text` where commands are not seen: quotes, code blocks and code spans.
fn excluded(text: &str) -> Vec<Range<usize>> {
    let (mut out, mut masked, mut rest_quoted) = (Vec::new(), String::new(), false);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        rest_quoted |= body.starts_with(">>>") || body.starts_with("&gt;&gt;&gt;");
        if rest_quoted || body.starts_with('>') || body.starts_with("&gt;") {
            out.push(masked.len()..masked.len() + line.len());
            masked.push_str(&blank(line));
        } else {
            masked.push_str(line);
        }
    }
    let fences: Vec<usize> = masked.match_indices("```").map(|(i, _)| i).collect();
    for pair in fences.chunks_exact(2) {
        let range = pair[0]..pair[1] + 3;
        masked.replace_range(range.clone(), &blank(&masked[range.clone()]));
        out.push(range);
    }
    // `<!here>` at a line start would open an HTML block and hide the rest of the line.
    let masked = masked.replace("<!", " !");
    for (event, range) in Parser::new(&masked).into_offset_iter() {
        if let Event::Code(_) | Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_)) = event {
            out.push(range);
        }
    }
    out
}

fn is_plain(excluded: &[Range<usize>], r: &Range<usize>) -> bool {
    excluded
        .iter()
        .all(|e| e.end <= r.start || r.end <= e.start)
}

/// The byte range of `part`, a subslice of `text`.
fn range_in(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// Parses a message that may mention the bot. `None`: the bot is not mentioned outside code
/// and quotes. The command is the text after the first such mention: `<@ID>`, `<@!ID>` or
/// `<@ID|name>`.
pub fn parse_mention(text: &str, bot_user_id: &str) -> Option<Result<Command, ParseError>> {
    let excluded = excluded(text);
    let end = mention_end(text, bot_user_id, &excluded)?;
    Some(parse_command(text, end, &excluded))
}

/// Where the first mention of the bot outside code and quotes ends.
fn mention_end(text: &str, bot_user_id: &str, excluded: &Spans) -> Option<usize> {
    text.match_indices("<@").find_map(|(i, _)| {
        let rest = text[i + 2..].trim_start_matches('!');
        let after = rest
            .strip_prefix(bot_user_id)
            .filter(|_| !bot_user_id.is_empty())?;
        let len = if after.starts_with('|') {
            after.find('>')?
        } else {
            0
        };
        let range = i..text.len() - after.len() + len + 1;
        (after[len..].starts_with('>') && is_plain(excluded, &range)).then_some(range.end)
    })
}

fn parse_command(text: &str, from: usize, ex: &Spans) -> Result<Command, ParseError> {
    let body = text[from..].trim_start_matches(|c: char| c.is_whitespace() || ":,".contains(c));
    let word = body
        .split(|c: char| !(c.is_alphanumeric() || "-_".contains(c)))
        .next();
    let word = word
        .filter(|w| !w.is_empty())
        .or_else(|| body.split_whitespace().next());
    let Some(word) = word.filter(|_| body.contains(char::is_alphanumeric)) else {
        return Ok(Command::Help);
    };
    let plan = match word.to_lowercase().as_str() {
        "help" => return Ok(Command::Help),
        "status" => return Ok(Command::Status),
        "fix" => false,
        "plan" => true,
        _ => {
            let suggestion = suggest(word, &VERBS);
            return Err(ParseError::UnknownCommand {
                word: word.into(),
                suggestion,
            });
        }
    };
    let mut next = range_in(text, word).end;
    let object = text[next..].trim_start_matches([' ', '\t']);
    let object = object
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    if ["this", "it"].contains(&object.to_lowercase().as_str()) {
        next = range_in(text, object).end;
    }
    let command = if plan { Command::Plan } else { Command::Fix };
    Ok(command(fix_args(text, next, ex, true)?))
}

/// Options and instructions from `text[from..]`. Not `strict`: bad options stay in the prose.
fn fix_args(text: &str, from: usize, ex: &Spans, strict: bool) -> Result<FixArgs, ParseError> {
    let mut args = FixArgs::default();
    let (mut kept, mut last) = (String::new(), from);
    for word in text[from..].split_whitespace() {
        let range = range_in(text, word);
        if !is_plain(ex, &range) {
            continue;
        }
        match option(word, &mut args) {
            Ok(true) => {
                kept.push_str(text[last..range.start].trim_end());
                last = range.end;
            }
            Err(e) if strict => return Err(e),
            Ok(false) | Err(_) => {}
        }
    }
    kept.push_str(&text[last..]);
    let kept = kept.trim_start_matches(|c: char| c.is_whitespace() || ":,.!?-–—".contains(c));
    args.instructions = Some(kept.trim_end().to_string()).filter(|s| !s.is_empty());
    Ok(args)
}

/// Reads one word as an option into `args`: `Ok(false)` when it is prose.
fn option(word: &str, args: &mut FixArgs) -> Result<bool, ParseError> {
    let Some((key, value)) = word.split_once('=') else {
        return Ok(false);
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
        return Ok(false);
    }
    let value = unwrap_link(value.trim_end_matches(['.', ',', ';', '!', '?']));
    let value = value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    match key.to_ascii_lowercase().as_str() {
        "repo" => set(&mut args.repo, "repo", repo_value(value)?),
        "base" if valid_base(&value) => set(&mut args.base, "base", value),
        "base" => Err(bad("base", value, "a branch, tag or commit")),
        "attempts" => match value.parse() {
            Ok(n @ 1..=16) => set(&mut args.attempts, "attempts", n),
            _ => Err(bad("attempts", value, "a number from 1 to 16")),
        },
        lower => {
            let alias = ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, o)| *o);
            match alias.or_else(|| suggest(lower, &OPTIONS)) {
                Some(s) => Err(ParseError::UnknownOption {
                    key: key.into(),
                    suggestion: Some(s),
                }),
                None => Ok(false),
            }
        }
    }
}

fn set<T>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<bool, ParseError> {
    if slot.replace(value).is_some() {
        return Err(ParseError::DuplicateOption { key });
    }
    Ok(true)
}

fn bad(key: &'static str, value: String, expected: &'static str) -> ParseError {
    ParseError::BadValue {
        key,
        value,
        expected,
    }
}

/// The URL inside Slack's `<url>` or `<url|label>`; other text as is.
fn unwrap_link(s: &str) -> &str {
    match s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        Some(inner) => inner.split_once('|').map_or(inner, |(url, _)| url),
        None => s,
    }
}

/// `owner/name`, a clone URL, or an absolute path on the bot's machine.
fn repo_value(v: String) -> Result<String, ParseError> {
    let part = |s: &str| {
        let chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        chars && !s.is_empty() && !s.starts_with(['-', '.'])
    };
    let url = ["https://", "http://", "ssh://", "git@", "file://", "/"]
        .iter()
        .find(|p| v.starts_with(**p));
    let ok = match url {
        Some(p) => v.len() > p.len() && !v.contains(['<', '>', '"', '\'', '`', ' ', '\n']),
        None => v.split_once('/').is_some_and(|(o, n)| part(o) && part(n)),
    };
    if ok {
        Ok(v)
    } else {
        Err(bad("repo", v, "`owner/name` or a repository URL"))
    }
}

/// A ref git cannot take for an option or a range.
fn valid_base(v: &str) -> bool {
    let chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c));
    let ends = v.starts_with(['-', '/', '.']) || v.ends_with(['/', '.']);
    chars && !v.is_empty() && !ends && !v.contains("..") && !v.contains("//")
}

/// The length of `prefix` at the start of `s`, compared case-insensitively.
fn prefix_len_ci(s: &str, prefix: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    for p in prefix.chars() {
        let (_, c) = chars.next()?;
        if !c.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
    }
    Some(chars.next().map_or(s.len(), |(i, _)| i))
}

/// `Some(Command::Fix(..))` when a line starts with one of `phrases` (case-insensitive, whole
/// words) outside code and quotes. Instructions are the rest of the message; known options
/// are read, bad ones stay in the instructions.
pub fn parse_phrase(text: &str, phrases: &[String]) -> Option<Command> {
    let excluded = excluded(text);
    let phrases = phrases.iter().map(|p| p.trim()).filter(|p| !p.is_empty());
    let phrases: Vec<&str> = phrases.collect();
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        for len in phrases.iter().filter_map(|p| prefix_len_ci(body, p)) {
            let range = range_in(text, &body[..len]);
            if !body[len..].starts_with(char::is_alphanumeric) && is_plain(&excluded, &range) {
                let args = fix_args(text, range.end, &excluded, false).unwrap_or_default();
                return Some(Command::Fix(args));
            }
        }
    }
    None
}

/// Parses the text of the slash command (`/fix <text>`).
pub fn parse_slash(text: &str) -> Result<SlashCommand, ParseError> {
    let text = text.trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let first = words.first().map(|w| w.to_lowercase());
    match (first.as_deref(), &words[..]) {
        (None, _) | (Some("help"), [_]) => return Ok(SlashCommand::Help),
        (Some("status"), [_]) => return Ok(SlashCommand::Status),
        (Some("repo"), [_]) => return Ok(SlashCommand::ShowRepo),
        (Some("repo"), [_, repo]) => {
            return repo_value(unwrap_link(repo).into()).map(SlashCommand::SetRepo);
        }
        _ => {}
    }
    let link = words
        .iter()
        .find_map(|w| Some((range_in(text, w), parse_thread_link(w)?)));
    if let Some((range, link)) = link {
        let rest = format!("{} {}", &text[..range.start], &text[range.end..]);
        let args = fix_args(&rest, 0, &excluded(&rest), true)?;
        return Ok(SlashCommand::FromThread { link, args });
    }
    let args = fix_args(text, 0, &excluded(text), true)?;
    match args.instructions {
        None => Err(ParseError::NothingToDo),
        Some(_) => Ok(SlashCommand::Describe(args)),
    }
}

/// A Slack or Discord thread link, bare or as Slack's `<url|label>`.
pub fn parse_thread_link(text: &str) -> Option<ThreadLink> {
    let url = unwrap_link(text.trim());
    let url = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (url, query) = url.split_once('?').unwrap_or((url, ""));
    let (host, path) = url.split_once('/')?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts[..] {
        ["archives", channel, p] if host.ends_with(".slack.com") => {
            let p = p.strip_prefix('p').filter(|p| p.len() == 16 && digits(p))?;
            let thread = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("thread_ts="));
            let ts = match thread.and_then(|t| t.split_once('.')) {
                Some((s, us)) if digits(s) && digits(us) => format!("{s}.{us}"),
                _ => format!("{}.{}", &p[..10], &p[10..]),
            };
            let ok = channel.bytes().all(|b| b.is_ascii_alphanumeric());
            ok.then(|| ThreadLink::Slack {
                channel: channel.into(),
                ts,
            })
        }
        ["channels", guild, channel, message] if DISCORD.contains(&host) => {
            let ids = [guild, channel, message];
            let [guild, channel, message] = ids.map(String::from);
            let link = ThreadLink::Discord {
                guild,
                channel,
                message,
            };
            ids.iter().all(|s| digits(s)).then_some(link)
        }
        _ => None,
    }
}

/// The help message (Markdown). Every variant of [`Command`] and [`SlashCommand`] is matched,
/// so a new command does not compile without its help.
pub fn help_text(bot_name: &str, slash: &str) -> String {
    let bot = format!("@{}", bot_name.trim_start_matches('@'));
    let slash = format!("/{}", slash.trim_start_matches('/'));
    use {Command as C, SlashCommand as S};
    let args = FixArgs::default;
    let mut out = String::from("**Mention me** in a thread:\n\n");
    for command in [C::Fix(args()), C::Plan(args()), C::Status, C::Help] {
        let (usage, what) = match command {
            C::Fix(_) => (
                "fix this: <instructions>",
                "turn this thread into a task and fix it",
            ),
            C::Plan(_) => ("plan", "propose a plan for this thread before fixing"),
            C::Status => ("status", "list this channel's recent tasks"),
            C::Help => ("help", "show this message"),
        };
        out.push_str(&format!("- `{bot} {usage}`: {what}\n"));
    }
    out.push_str("\n**Slash command**:\n\n");
    let link = ThreadLink::Discord {
        guild: "".into(),
        channel: "".into(),
        message: "".into(),
    };
    let from_thread = S::FromThread { link, args: args() };
    for command in [
        S::Describe(args()),
        from_thread,
        S::SetRepo("".into()),
        S::ShowRepo,
        S::Status,
        S::Help,
    ] {
        let (usage, what) = match command {
            S::Describe(_) => ("<what is wrong>", "start a task from a description"),
            S::FromThread { .. } => ("<thread link> [instructions]", "start from that thread"),
            S::SetRepo(_) => ("repo <owner/name>", "set this channel's repository"),
            S::ShowRepo => ("repo", "show this channel's repository"),
            S::Status => ("status", "list this channel's recent tasks"),
            S::Help => ("help", "show this message"),
        };
        out.push_str(&format!("- `{slash} {usage}`: {what}\n"));
    }
    out + "\n**Options**, anywhere in a request: `repo=owner/name` (or a URL), `base=<branch>`, \
           `attempts=<1-16>`. I ignore mentions inside code and quotes.\n"
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

mod follow_up;
pub use follow_up::{FollowUp, parse_follow_up};
