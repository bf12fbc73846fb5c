//! Secret references: an app secret given as a value, `env:NAME` or `file:PATH`, resolved when
//! the configuration is loaded.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::types::AppSecret;

/// The largest secret file read (a secret is a few dozen bytes; this only bounds mistakes).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// How a configuration gives an app secret.
///
/// | written as | means |
/// |---|---|
/// | `env:NAME` | the value of environment variable `NAME` |
/// | `file:PATH` | the content of file `PATH`, without trailing line breaks (a relative path is taken relative to the configuration file's directory, or the working directory when there is none) |
/// | `plain:VALUE` | the literal `VALUE` (use it for a secret that itself starts with `env:`, `file:` or `plain:`) |
/// | anything else | the literal value |
///
/// `Debug` never shows a literal value; references show their variable or path, which are not
/// secret.
///
/// ```
/// use unilogin_core::config::SecretRef;
/// let r = SecretRef::parse("env:UNILOGIN_DOC_SURELY_UNSET_VAR");
/// let err = r.resolve(None).unwrap_err();
/// assert!(err.contains("UNILOGIN_DOC_SURELY_UNSET_VAR") && err.contains("not set"));
/// assert_eq!(SecretRef::parse("s3cret").resolve(None).unwrap().expose(), "s3cret");
/// assert_eq!(SecretRef::parse("plain:env:x").resolve(None).unwrap().expose(), "env:x");
/// assert_eq!(format!("{:?}", SecretRef::parse("s3cret")), "Plain(***)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A literal value.
    Plain(AppSecret),
    /// An environment variable's name.
    Env(String),
    /// A file path.
    File(PathBuf),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Plain(_) => f.write_str("Plain(***)"),
            SecretRef::Env(name) => write!(f, "Env({name:?})"),
            SecretRef::File(path) => write!(f, "File({path:?})"),
        }
    }
}

impl SecretRef {
    /// Reads the written form (see the table above). Never fails: anything that is not a
    /// reference is a literal.
    pub fn parse(raw: &str) -> Self {
        if let Some(name) = raw.strip_prefix("env:") {
            SecretRef::Env(name.to_string())
        } else if let Some(path) = raw.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path))
        } else if let Some(value) = raw.strip_prefix("plain:") {
            SecretRef::Plain(AppSecret::new(value))
        } else {
            SecretRef::Plain(AppSecret::new(raw))
        }
    }

    /// Whether this is a reference (`env:` or `file:`) rather than a literal.
    pub fn is_reference(&self) -> bool {
        !matches!(self, SecretRef::Plain(_))
    }

    /// The written form of a reference (`env:NAME` / `file:PATH`); `None` for a literal.
    pub fn reference(&self) -> Option<String> {
        match self {
            SecretRef::Plain(_) => None,
            SecretRef::Env(name) => Some(format!("env:{name}")),
            SecretRef::File(path) => Some(format!("file:{}", path.display())),
        }
    }

    /// Resolves to the secret. `base_dir` is where relative `file:` paths start. The error says
    /// what is wrong (unset variable, unreadable file, empty value) and never contains the
    /// secret.
    pub fn resolve(&self, base_dir: Option<&Path>) -> Result<AppSecret, String> {
        let value = match self {
            SecretRef::Plain(s) => return Ok(s.clone()),
            SecretRef::Env(name) => {
                if name.is_empty()
                    || name.starts_with(|c: char| c.is_ascii_digit())
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "`env:{}` does not name an environment variable (letters, digits and `_`)",
                        name.chars().take(64).collect::<String>()
                    ));
                }
                match std::env::var(name) {
                    Ok(v) => v,
                    Err(std::env::VarError::NotPresent) => {
                        return Err(format!("environment variable `{name}` is not set"));
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(format!("environment variable `{name}` is not valid UTF-8"));
                    }
                }
            }
            SecretRef::File(path) => {
                if path.as_os_str().is_empty() {
                    return Err("`file:` needs a path".into());
                }
                let full = match base_dir {
                    Some(base) if path.is_relative() => base.join(path),
                    _ => path.clone(),
                };
                read_secret_file(&full)?
            }
        };
        let trimmed = value.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(format!("{} is empty", self.reference().unwrap_or_default()));
        }
        Ok(AppSecret::new(trimmed))
    }
}

/// Which secret references a configuration may use: an allow-list of environment variable
/// names and of directories (a `file:` reference must name a file below one of them).
///
/// Secret references are an operator privilege. A configuration file the operator writes may
/// reference anything ([`SecretRefPolicy::any`]). Rows written through SQL or an admin API must
/// not (default [`SecretRefPolicy::none`]): `app_secret: env:SESSION_KEY` or
/// `file:/proc/self/environ` in a row would otherwise send the server's own secrets to whatever
/// token endpoint the row names.
///
/// A `file:` path is checked after resolving `..` and symbolic links, so neither leads out of
/// an allowed directory.
///
/// ```
/// use unilogin_core::config::{SecretRef, SecretRefPolicy};
/// let policy = SecretRefPolicy::none().allow_env("ACME_DT_SECRET");
/// assert!(policy.check(&SecretRef::parse("env:ACME_DT_SECRET"), None).is_ok());
/// let e = policy.check(&SecretRef::parse("env:SESSION_KEY"), None).unwrap_err();
/// assert!(e.contains("SESSION_KEY") && e.contains("not allowed"), "{e}");
/// let e = policy.check(&SecretRef::parse("file:/proc/self/environ"), None).unwrap_err();
/// assert!(e.contains("not allowed"), "{e}");
/// assert!(policy.check(&SecretRef::parse("a-literal"), None).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRefPolicy {
    any: bool,
    env: std::collections::BTreeSet<String>,
    dirs: Vec<PathBuf>,
}

impl SecretRefPolicy {
    /// No reference is allowed (literal values only).
    pub fn none() -> Self {
        Self::default()
    }

    /// Every reference is allowed: for configuration the operator writes (a file on disk).
    pub fn any() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Also allows `env:NAME`.
    pub fn allow_env(mut self, name: impl Into<String>) -> Self {
        self.env.insert(name.into());
        self
    }

    /// Also allows `file:` references to files below `dir` (at any depth).
    pub fn allow_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Whether every reference is allowed.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether no reference at all is allowed.
    pub fn allows_none(&self) -> bool {
        !self.any && self.env.is_empty() && self.dirs.is_empty()
    }

    /// Checks `reference` (literals always pass). `base_dir` is where a relative `file:` path
    /// starts. The error says which reference is refused and never contains a secret.
    pub fn check(&self, reference: &SecretRef, base_dir: Option<&Path>) -> Result<(), String> {
        if self.any {
            return Ok(());
        }
        match reference {
            SecretRef::Plain(_) => Ok(()),
            SecretRef::Env(name) => {
                if self.env.contains(name) {
                    Ok(())
                } else {
                    Err(format!(
                        "`env:{}` is not allowed here: secret references in stored configuration must be allow-listed by the operator",
                        name.chars().take(64).collect::<String>()
                    ))
                }
            }
            SecretRef::File(path) => {
                let refused = || {
                    format!(
                        "`file:{}` is not allowed here: secret files in stored configuration must be below a directory the operator allow-lists",
                        path.display()
                            .to_string()
                            .chars()
                            .take(200)
                            .collect::<String>()
                    )
                };
                let full = match base_dir {
                    Some(base) if path.is_relative() => base.join(path),
                    _ => path.clone(),
                };
                // Resolve `..` and symbolic links before comparing; a path that does not
                // resolve cannot be shown to be inside an allowed directory.
                let Ok(real) = full.canonicalize() else {
                    return Err(refused());
                };
                let inside = self.dirs.iter().any(|dir| {
                    dir.canonicalize()
                        .is_ok_and(|d| real.starts_with(&d) && real != d)
                });
                if inside { Ok(()) } else { Err(refused()) }
            }
        }
    }
}

impl SecretRef {
    /// [`check`](SecretRefPolicy::check)s this reference against `policy`, then
    /// [`resolve`](Self::resolve)s it.
    pub fn resolve_with(
        &self,
        base_dir: Option<&Path>,
        policy: &SecretRefPolicy,
    ) -> Result<AppSecret, String> {
        policy.check(self, base_dir)?;
        self.resolve(base_dir)
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read secret file `{shown}`: {}", e.kind()))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read secret file `{shown}`: {}", e.kind()))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "secret file `{shown}` is larger than {MAX_SECRET_FILE} bytes"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_every_form() {
        let dir = std::env::temp_dir().join(format!("unilogin-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.txt"), "from-file\n").unwrap();
        let abs = SecretRef::parse(&format!("file:{}", dir.join("s.txt").display()));
        assert_eq!(abs.resolve(None).unwrap().expose(), "from-file");
        let rel = SecretRef::parse("file:s.txt");
        assert_eq!(rel.resolve(Some(&dir)).unwrap().expose(), "from-file");
        assert!(rel.is_reference());
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        let e = SecretRef::parse("file:empty.txt")
            .resolve(Some(&dir))
            .unwrap_err();
        assert!(e.contains("is empty"), "{e}");
        let e = SecretRef::parse("file:missing.txt")
            .resolve(Some(&dir))
            .unwrap_err();
        assert!(e.contains("missing.txt") && e.contains("not found"), "{e}");
        // PATH is always set in a test environment and is not a secret.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            SecretRef::parse("env:PATH").resolve(None).unwrap().expose(),
            path
        );
        let e = SecretRef::parse("env:BAD-NAME").resolve(None).unwrap_err();
        assert!(e.contains("does not name"), "{e}");
        assert_eq!(SecretRef::parse("env:X").reference().unwrap(), "env:X");
        assert_eq!(SecretRef::parse("v").reference(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policy_allows_only_listed_names_and_directories() {
        let root = std::env::temp_dir().join(format!("unilogin-policy-{}", std::process::id()));
        let allowed = root.join("allowed");
        let outside = root.join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("s"), "in").unwrap();
        std::fs::write(outside.join("s"), "out").unwrap();
        let policy = SecretRefPolicy::none()
            .allow_dir(&allowed)
            .allow_env("PATH");
        let file = |p: &Path| SecretRef::parse(&format!("file:{}", p.display()));
        assert_eq!(
            file(&allowed.join("s"))
                .resolve_with(None, &policy)
                .unwrap()
                .expose(),
            "in"
        );
        // Outside, through `..`, the directory itself: refused before anything is read.
        for p in [
            outside.join("s"),
            allowed.join("../outside/s"),
            allowed.clone(),
            PathBuf::from("/proc/self/environ"),
        ] {
            let e = file(&p).resolve_with(None, &policy).unwrap_err();
            assert!(e.contains("not allowed"), "{p:?}: {e}");
            assert!(!e.contains("out\n"), "{e}");
        }
        #[cfg(unix)]
        {
            let link = allowed.join("link");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(outside.join("s"), &link).unwrap();
            let e = file(&link).resolve_with(None, &policy).unwrap_err();
            assert!(e.contains("not allowed"), "{e}");
        }
        assert!(
            SecretRef::parse("env:PATH")
                .resolve_with(None, &policy)
                .is_ok()
        );
        let e = SecretRef::parse("env:HOME")
            .resolve_with(None, &policy)
            .unwrap_err();
        assert!(e.contains("env:HOME") && e.contains("not allowed"), "{e}");
        assert!(SecretRefPolicy::none().allows_none());
        assert!(
            SecretRefPolicy::any()
                .check(&file(&outside.join("s")), None)
                .is_ok()
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
