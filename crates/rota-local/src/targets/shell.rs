//! The sandboxed interpreter Cloud Assistant runs user commands with on an
//! emulated instance. Nothing ever runs on the host: this is a tiny,
//! self-contained shell over the emulated instance's accounts.
//!
//! **Syntax**: statements separated by newlines or `;`; `&&` and `||`
//! chains; pipelines with `|`; words with `'single'` and `"double"` quotes
//! (no expansion inside either) and `\` escapes; `#` comments. Variables
//! (`$…`), command substitution, redirections, globs, background jobs and
//! subshells are refused: the whole command is then `CommandNotApplicable`
//! (nothing of it ran).
//!
//! **Commands**:
//! - `echo [-n] WORD…`, `true`, `false`, `exit [N]`;
//! - `whoami`, `id -un` (the invoking user), `id -u` (0 for root), `hostname`
//!   (the instance id);
//! - `chpasswd [-e]` (as root): reads `user:password` lines from its input
//!   and sets those passwords; with `-e` each is a crypt hash (`$6$…` or
//!   `$5$…`), so the value never appears in the command;
//! - `getent shadow USER` (as root): the account's shadow line, its crypt
//!   hash in field 2 (the hash set, or a fresh SHA-512-crypt hash of a
//!   password set as a value); exit 2 for an unknown user or a non-root
//!   caller;
//! - `su [-] [-c CMD] USER` (also `su USER -c CMD`): runs CMD (one command
//!   of this list) as USER. **A password piped in is always checked**, even
//!   when root calls su (real su lets root in without one), so
//!   `echo 'PW' | su USER -c whoami` is a login check: `su: Authentication
//!   failure` and exit 1 when the password is wrong. Without piped input,
//!   root may switch user and anyone else is refused;
//! - `cat ~USER/.ssh/authorized_keys` (or `/home/USER/…`, `/root/…`): the
//!   account's authorized public keys, readable by root and by the user.
//!
//! Anything else is `CommandNotApplicable`.

use super::EcsInstance;

/// The result of running a script.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran: exit code and combined output.
    Ran { exit: i64, output: String },
    /// It was refused before running anything.
    NotApplicable(String),
}

/// What a script runs against.
pub(crate) struct Ctx<'a> {
    pub(crate) instance: &'a mut EcsInstance,
    pub(crate) user: String,
    pub(crate) now: i64,
    /// Whether an account changed (the caller persists the instance).
    pub(crate) changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Pipe,
    And,
    Or,
    Sep,
}

fn tokenize(script: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = script.chars().peekable();
    let mut word: Option<String> = None;
    let flush = |word: &mut Option<String>, out: &mut Vec<Tok>| {
        if let Some(w) = word.take() {
            out.push(Tok::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => flush(&mut word, &mut out),
            '\n' | ';' => {
                flush(&mut word, &mut out);
                out.push(Tok::Sep);
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push(Tok::Sep);
                        break;
                    }
                }
            }
            '|' => {
                flush(&mut word, &mut out);
                if chars.peek() == Some(&'|') {
                    chars.next();
                    out.push(Tok::Or);
                } else {
                    out.push(Tok::Pipe);
                }
            }
            '&' => {
                flush(&mut word, &mut out);
                if chars.next() == Some('&') {
                    out.push(Tok::And);
                } else {
                    return Err("background jobs (&) are not supported".into());
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some('$' | '`') => {
                            return Err("expansions ($, `) are not supported".into());
                        }
                        Some(c) => w.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next()
                    && c != '\n'
                {
                    word.get_or_insert_with(String::new).push(c);
                }
            }
            '$' | '`' => return Err("expansions ($, `) are not supported".into()),
            '>' | '<' => return Err("redirections are not supported".into()),
            '(' | ')' | '{' | '}' => return Err("subshells and groups are not supported".into()),
            '*' | '?' | '[' => return Err("globs are not supported".into()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

/// A pipeline: commands (argv) joined by `|`.
type Pipeline = Vec<Vec<String>>;

/// A statement: pipelines joined by `&&` (true) or `||` (false).
struct Statement {
    first: Pipeline,
    rest: Vec<(bool, Pipeline)>,
}

fn parse(tokens: Vec<Tok>) -> Result<Vec<Statement>, String> {
    let mut statements = Vec::new();
    let mut pipelines: Vec<(Option<bool>, Pipeline)> = Vec::new();
    let mut pipeline: Pipeline = Vec::new();
    let mut argv: Vec<String> = Vec::new();
    let mut joiner: Option<bool> = None;
    let end_cmd = |argv: &mut Vec<String>, pipeline: &mut Pipeline| -> Result<(), String> {
        if argv.is_empty() {
            return Err("syntax error: an empty command".into());
        }
        pipeline.push(std::mem::take(argv));
        Ok(())
    };
    for t in tokens.into_iter().chain([Tok::Sep]) {
        match t {
            Tok::Word(w) => argv.push(w),
            Tok::Pipe => end_cmd(&mut argv, &mut pipeline)?,
            Tok::And | Tok::Or => {
                end_cmd(&mut argv, &mut pipeline)?;
                pipelines.push((joiner, std::mem::take(&mut pipeline)));
                joiner = Some(t == Tok::And);
            }
            Tok::Sep => {
                if argv.is_empty() && pipeline.is_empty() && pipelines.is_empty() {
                    continue;
                }
                end_cmd(&mut argv, &mut pipeline)?;
                pipelines.push((joiner.take(), std::mem::take(&mut pipeline)));
                let mut it = pipelines.drain(..);
                let (_, first) = it.next().expect("one pipeline");
                statements.push(Statement {
                    first,
                    rest: it.map(|(j, p)| (j.unwrap_or(true), p)).collect(),
                });
            }
        }
    }
    Ok(statements)
}

/// Why a script stopped early.
enum Stop {
    Exit(i64),
    NotApplicable(String),
}

/// Runs `script` on the instance as `ctx.user`.
pub(crate) fn run(script: &str, ctx: &mut Ctx<'_>) -> Outcome {
    let statements = match tokenize(script).and_then(parse) {
        Ok(s) => s,
        Err(why) => return Outcome::NotApplicable(why),
    };
    // Check every command name before running anything.
    for s in &statements {
        for p in std::iter::once(&s.first).chain(s.rest.iter().map(|(_, p)| p)) {
            for argv in p {
                if let Err(why) = supported(argv) {
                    return Outcome::NotApplicable(why);
                }
            }
        }
    }
    let mut output = String::new();
    let mut last = 0;
    for s in &statements {
        let r = run_pipeline(&s.first, ctx, &mut output).and_then(|code| {
            let mut code = code;
            for (and, p) in &s.rest {
                if (code == 0) == *and {
                    code = run_pipeline(p, ctx, &mut output)?;
                }
            }
            Ok(code)
        });
        match r {
            Ok(code) => last = code,
            Err(Stop::Exit(code)) => {
                return Outcome::Ran { exit: code, output };
            }
            Err(Stop::NotApplicable(why)) => return Outcome::NotApplicable(why),
        }
    }
    Outcome::Ran { exit: last, output }
}

const COMMANDS: &[&str] = &[
    "echo", "true", "false", "exit", "whoami", "id", "hostname", "chpasswd", "su", "cat", "getent",
];

fn supported(argv: &[String]) -> Result<(), String> {
    let name = argv[0].as_str();
    if !COMMANDS.contains(&name) {
        return Err(format!(
            "`{name}` is not supported by the sandboxed interpreter of rota-local (supported: {})",
            COMMANDS.join(", ")
        ));
    }
    Ok(())
}

fn run_pipeline(p: &Pipeline, ctx: &mut Ctx<'_>, output: &mut String) -> Result<i64, Stop> {
    let mut input: Option<String> = None;
    let mut code = 0;
    for (i, argv) in p.iter().enumerate() {
        let user = ctx.user.clone();
        let (c, out) = command(argv, input.take(), &user, ctx)?;
        code = c;
        if i + 1 == p.len() {
            output.push_str(&out);
        } else {
            input = Some(out);
        }
    }
    Ok(code)
}

fn home_user(path: &str) -> Option<&str> {
    let rest = path.strip_suffix("/.ssh/authorized_keys")?;
    if rest == "/root" {
        return Some("root");
    }
    rest.strip_prefix('~')
        .or_else(|| rest.strip_prefix("/home/"))
        .filter(|u| !u.is_empty() && !u.contains('/'))
}

/// Runs one command as `user`; returns (exit code, output).
fn command(
    argv: &[String],
    stdin: Option<String>,
    user: &str,
    ctx: &mut Ctx<'_>,
) -> Result<(i64, String), Stop> {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let root = user == "root" || user == "system";
    let ok = |s: String| Ok((0, s));
    match argv[0].as_str() {
        "echo" => match args.split_first() {
            Some((&"-n", rest)) => ok(rest.join(" ")),
            _ => ok(format!("{}\n", args.join(" "))),
        },
        "true" => ok(String::new()),
        "false" => Ok((1, String::new())),
        "exit" => {
            let code = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
            Err(Stop::Exit(code))
        }
        "whoami" => ok(format!("{user}\n")),
        "id" => match args.as_slice() {
            ["-un"] | ["-nu"] => ok(format!("{user}\n")),
            ["-u"] => ok(if root {
                "0\n".to_owned()
            } else {
                let n = ctx
                    .instance
                    .accounts
                    .keys()
                    .position(|a| a == user)
                    .unwrap_or(0);
                format!("{}\n", 1000 + n)
            }),
            _ => Err(Stop::NotApplicable("id takes -un or -u here".to_owned())),
        },
        "hostname" => ok(format!("{}\n", ctx.instance.id)),
        "chpasswd" => {
            if !root {
                return Ok((1, "chpasswd: Permission denied.\n".into()));
            }
            let encrypted = match args.as_slice() {
                [] => false,
                ["-e" | "--encrypted"] => true,
                _ => {
                    return Err(Stop::NotApplicable(
                        "chpasswd takes no argument or -e here".to_owned(),
                    ));
                }
            };
            let input = stdin.unwrap_or_default();
            let mut out = String::new();
            let mut code = 0;
            for (n, line) in input.lines().enumerate() {
                let Some((name, pass)) = line.split_once(':') else {
                    out.push_str(&format!("chpasswd: line {}: missing new password\n", n + 1));
                    code = 1;
                    continue;
                };
                if encrypted && !pass.starts_with("$6$") && !pass.starts_with("$5$") {
                    out.push_str(&format!(
                        "chpasswd: line {}: the password is not a $6$ or $5$ crypt hash\n",
                        n + 1
                    ));
                    code = 1;
                    continue;
                }
                match ctx.instance.accounts.get_mut(name) {
                    Some(a) if encrypted => {
                        a.password = None;
                        a.password_hash = Some(pass.to_owned());
                        a.changed = ctx.now;
                        ctx.changed = true;
                    }
                    Some(a) => {
                        a.set_password(pass, ctx.now);
                        ctx.changed = true;
                    }
                    None => {
                        out.push_str(&format!(
                            "chpasswd: line {}: user '{name}' does not exist\n",
                            n + 1
                        ));
                        code = 1;
                    }
                }
            }
            Ok((code, out))
        }
        "su" => {
            let mut target: Option<&str> = None;
            let mut cmd: Option<&str> = None;
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match *a {
                    "-" | "-l" | "--login" => {}
                    "-c" => cmd = it.next().copied(),
                    other if target.is_none() && !other.starts_with('-') => target = Some(other),
                    other => {
                        return Err(Stop::NotApplicable(format!(
                            "su: unsupported argument `{other}`"
                        )));
                    }
                }
            }
            let target = target.unwrap_or("root");
            let account = ctx.instance.accounts.get(target);
            if account.is_none() && target != "root" {
                return Ok((1, format!("su: user {target} does not exist\n")));
            }
            let allowed = match &stdin {
                Some(input) => {
                    let typed = input.lines().next().unwrap_or_default();
                    account.is_some_and(|a| a.password_is(typed))
                }
                None => root,
            };
            if !allowed {
                return Ok((1, "Password: su: Authentication failure\n".into()));
            }
            let prefix = if stdin.is_some() { "Password: " } else { "" };
            match cmd {
                None => Ok((0, prefix.to_owned())),
                Some(c) => {
                    let inner = match tokenize(c).and_then(parse) {
                        Ok(s) => s,
                        Err(why) => return Err(Stop::NotApplicable(why)),
                    };
                    let mut out = prefix.to_owned();
                    let saved = std::mem::replace(&mut ctx.user, target.to_owned());
                    let mut code = 0;
                    for s in &inner {
                        for p in std::iter::once(&s.first).chain(s.rest.iter().map(|(_, p)| p)) {
                            for argv in p {
                                if let Err(why) = supported(argv) {
                                    ctx.user = saved;
                                    return Err(Stop::NotApplicable(why));
                                }
                            }
                        }
                        match run_pipeline(&s.first, ctx, &mut out) {
                            Ok(c) => code = c,
                            Err(Stop::Exit(c)) => {
                                code = c;
                                break;
                            }
                            Err(e) => {
                                ctx.user = saved;
                                return Err(e);
                            }
                        }
                    }
                    ctx.user = saved;
                    Ok((code, out))
                }
            }
        }
        "getent" => {
            let ["shadow", name] = args.as_slice() else {
                return Err(Stop::NotApplicable(
                    "getent reads one account of the shadow database here (getent shadow USER)"
                        .to_owned(),
                ));
            };
            if !root {
                return Ok((2, String::new()));
            }
            match ctx.instance.accounts.get(*name) {
                Some(a) => {
                    let hash = a.shadow_hash().unwrap_or_else(|| "!".to_owned());
                    // Field 3: the day of the last change, since 1970-01-01.
                    let days = a.changed.div_euclid(86_400);
                    Ok((0, format!("{name}:{hash}:{days}:0:99999:7:::\n")))
                }
                None => Ok((2, String::new())),
            }
        }
        "cat" => {
            let [path] = args.as_slice() else {
                return Err(Stop::NotApplicable(
                    "cat reads one authorized_keys file here".to_owned(),
                ));
            };
            let Some(owner) = home_user(path) else {
                return Err(Stop::NotApplicable(format!(
                    "cat: only ~USER/.ssh/authorized_keys exists on an emulated instance, not {path}"
                )));
            };
            if !root && owner != user {
                return Ok((1, format!("cat: {path}: Permission denied\n")));
            }
            match ctx.instance.accounts.get(owner) {
                Some(a) if !a.public_keys.is_empty() => {
                    ok(a.public_keys.iter().map(|k| format!("{k}\n")).collect())
                }
                _ => Ok((1, format!("cat: {path}: No such file or directory\n"))),
            }
        }
        other => Err(Stop::NotApplicable(format!("`{other}` is not supported"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rota_kms::SecretString;

    use super::*;
    use crate::targets::OsAccount;
    use crate::world::OsType;

    fn instance() -> EcsInstance {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            "app".to_owned(),
            OsAccount {
                password: Some(SecretString::new("old-pass")),
                password_hash: None,
                public_keys: vec!["ssh-ed25519 AAAA app".into()],
                changed: 0,
            },
        );
        EcsInstance {
            id: "i-1".into(),
            region: "cn-hangzhou".into(),
            os_type: OsType::Linux,
            accounts,
        }
    }

    fn run_as(inst: &mut EcsInstance, user: &str, script: &str) -> Outcome {
        let mut ctx = Ctx {
            instance: inst,
            user: user.into(),
            now: 1,
            changed: false,
        };
        run(script, &mut ctx)
    }

    #[test]
    fn a_password_set_as_a_hash_logs_in_and_shows_only_as_a_hash() {
        let mut inst = instance();
        let hash = rota_kms::password::crypt_sha512("n3w-Pass");
        let set = run_as(
            &mut inst,
            "root",
            &format!("echo 'app:{hash}' | chpasswd -e"),
        );
        assert_eq!(set, ran(0, ""));
        assert!(inst.accounts["app"].password.is_none());
        assert_eq!(
            run_as(&mut inst, "root", "getent shadow app"),
            ran(0, &format!("app:{hash}:0:0:99999:7:::\n"))
        );
        assert_eq!(
            run_as(&mut inst, "root", "echo 'n3w-Pass' | su app -c whoami"),
            ran(0, "Password: app\n")
        );
        assert_eq!(
            run_as(&mut inst, "root", "echo 'old-pass' | su app -c whoami").exit(),
            1
        );
        // Only root reads the shadow database; -e takes hashes only.
        assert_eq!(run_as(&mut inst, "app", "getent shadow app"), ran(2, ""));
        assert_eq!(
            run_as(&mut inst, "root", "getent shadow nobody"),
            ran(2, "")
        );
        assert_eq!(
            run_as(&mut inst, "root", "echo 'app:plain' | chpasswd -e").exit(),
            1
        );
        // A password set as a value shows as a SHA-512-crypt hash of it.
        run_as(&mut inst, "root", "echo 'app:again' | chpasswd");
        let Outcome::Ran { output, .. } = run_as(&mut inst, "root", "getent shadow app") else {
            panic!("getent ran")
        };
        let shown = output.split(':').nth(1).unwrap();
        assert!(shown.starts_with("$6$") && rota_kms::password::crypt_verify("again", shown));
    }

    impl Outcome {
        fn exit(&self) -> i64 {
            match self {
                Outcome::Ran { exit, .. } => *exit,
                Outcome::NotApplicable(why) => panic!("not applicable: {why}"),
            }
        }
    }

    fn ran(exit: i64, output: &str) -> Outcome {
        Outcome::Ran {
            exit,
            output: output.into(),
        }
    }

    #[test]
    fn basics() {
        let mut i = instance();
        assert_eq!(
            run_as(
                &mut i,
                "root",
                "#!/bin/sh\necho hello 'big world'; whoami && id -un"
            ),
            ran(0, "hello big world\nroot\nroot\n")
        );
        assert_eq!(run_as(&mut i, "app", "false || echo x"), ran(0, "x\n"));
        assert_eq!(run_as(&mut i, "app", "false && echo x"), ran(1, ""));
        assert_eq!(
            run_as(&mut i, "app", "echo a; exit 3; echo b"),
            ran(3, "a\n")
        );
        assert_eq!(run_as(&mut i, "app", "hostname"), ran(0, "i-1\n"));
    }

    #[test]
    fn refused_before_anything_runs() {
        let mut i = instance();
        for s in [
            "echo ok; rm -rf /",
            "echo $HOME",
            "echo `id`",
            "echo x > /etc/passwd",
            "sleep 1 &",
            "(echo x)",
            "cat /etc/shadow",
        ] {
            assert!(
                matches!(run_as(&mut i, "root", s), Outcome::NotApplicable(_)),
                "{s}"
            );
        }
    }

    #[test]
    fn chpasswd_and_su_login_checks() {
        let mut i = instance();
        assert_eq!(
            run_as(&mut i, "root", "echo 'old-pass' | su app -c whoami"),
            ran(0, "Password: app\n")
        );
        assert_eq!(
            run_as(&mut i, "root", "echo 'app:New-Pass1' | chpasswd"),
            ran(0, "")
        );
        assert_eq!(
            run_as(&mut i, "root", "echo 'old-pass' | su -c whoami app"),
            ran(1, "Password: su: Authentication failure\n")
        );
        assert_eq!(
            run_as(&mut i, "root", "echo New-Pass1 | su - app -c 'id -un'"),
            ran(0, "Password: app\n")
        );
        assert_eq!(
            run_as(&mut i, "app", "echo 'app:x' | chpasswd"),
            ran(1, "chpasswd: Permission denied.\n")
        );
        assert_eq!(
            run_as(&mut i, "app", "su -c whoami app"),
            ran(1, "Password: su: Authentication failure\n")
        );
        assert_eq!(
            run_as(&mut i, "app", "cat ~app/.ssh/authorized_keys"),
            ran(0, "ssh-ed25519 AAAA app\n")
        );
    }
}
