//! `cargo xtask new-platform NAME`: scaffolds a platform in the workspace's layout.
//!
//! The generated platform is complete and working for an invented `{errcode, errmsg}`
//! platform, so that everything builds and passes from the first minute; every `REPLACE:`
//! marks what a contributor takes from the real platform's documentation instead
//! (`docs/adding-a-platform.md` walks through it). It writes:
//!
//! - `crates/NAME/`: the platform crate on the core's platform SDK (`src/lib.rs`: registration
//!   with its `InClient::Jsapi` surface, hosts, options, the `Platform` impl; `src/api.rs`: HTTP
//!   calls and envelope; `src/error.rs`: the error table), `rules.yaml`, and `tests/` against
//!   the fake;
//! - `crates/testkit/src/IDENT/`: the fake on the test kit's skeleton (a `Backend`: state,
//!   routes, envelope, pages);
//! - `tests/tests/IDENT.rs`: the conformance suite against the fake;
//! - `crates/unilogin/examples/IDENT_login.rs` and `docs/platforms/NAME.md`;
//!
//! and wires them in: workspace member and dependency, the facade's feature `NAME` (also in
//! `full` and in `[package.metadata.unilogin] platforms`, the CI feature matrix), its
//! re-export and example, the test kit's module and the conformance suite's dev-dependency.

use std::path::{Path, PathBuf};
use std::process::Command;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value, value};

use crate::Result;

/// `(path, template)` of a generated file: the template is
/// `scaffold/templates/<file>.tmpl`.
macro_rules! template {
    ($path:literal, $file:literal) => {
        (
            $path,
            include_str!(concat!("scaffold/templates/", $file, ".tmpl")),
        )
    };
}

/// The generated files: path and template, both with placeholders (see [`Names::fill`]).
#[rustfmt::skip]
const FILES: &[(&str, &str)] = &[
    template!("crates/{{name}}/Cargo.toml", "platform/Cargo.toml"),
    template!("crates/{{name}}/src/lib.rs", "platform/src/lib.rs"),
    template!("crates/{{name}}/src/api.rs", "platform/src/api.rs"),
    template!("crates/{{name}}/src/error.rs", "platform/src/error.rs"),
    template!("crates/{{name}}/rules.yaml", "platform/rules.yaml"),
    template!("crates/{{name}}/jsapi.js", "platform/jsapi.js"),
    template!("crates/{{name}}/tests/{{ident}}.rs", "platform/tests/platform.rs"),
    template!("crates/testkit/src/{{ident}}/mod.rs", "fake/mod.rs"),
    template!("crates/testkit/src/{{ident}}/envelope.rs", "fake/envelope.rs"),
    template!("crates/testkit/src/{{ident}}/handlers.rs", "fake/handlers.rs"),
    template!("crates/testkit/src/{{ident}}/pages.rs", "fake/pages.rs"),
    template!("tests/tests/{{ident}}.rs", "wiring/conformance.rs"),
    template!("crates/unilogin/examples/{{ident}}_login.rs", "wiring/example.rs"),
    template!("docs/platforms/{{name}}.md", "wiring/page.md"),
];

/// Names a template can't take as the platform's: crates, features and test-kit modules that
/// exist, crates the templates use, and Rust's reserved words (the name is a module).
const RESERVED: &str = "\
    core unilogin full redis sql axum testkit gateway benchkit conformance xtask calls \
    clock fake faults fixtures http pages platform selfbuilt server store table users std \
    alloc test url serde serde-json tokio reqwest inventory async-trait tracing as async \
    await box break const continue crate do dyn else enum extern false final fn for gen if \
    impl in let loop macro match mod move mut override priv pub ref return self static \
    struct super trait true try type typeof union unsafe unsized use virtual where while \
    yield";

/// The type names the templates use beside the platform's own (its name in CamelCase).
const TYPES: &str = "\
    AccessToken AppCredentials AppSecret Arc AuthCode AuthorizeRequest Backend Base \
    Callback Check CodeGrant CodeKind CodeStore Duration EndpointRole EndpointSpec Error \
    ErrorClass Expected Fake FakeClock FakeRouter FakeUser Fault FaultCodes FetchedToken \
    Flow Hosts HttpClient HttpConfig Identity InClient JsapiLogin Map Method \
    NumericEnvelope Params Platform PlatformConfig PlatformContext PlatformRegistration \
    PlatformResponder Refusal Registry Reply Request Response Result Setup SignInPage Sso \
    StaticConfig StatusCode TenantId Times TokenStore UpstreamCode UpstreamCtx Url \
    UserDirectory Value WebCallback";

/// Validates a platform name: lower-case ASCII letters, digits and single `-`s, starting with a
/// letter, not reserved.
pub fn validate_name(name: &str) -> Result {
    let ok = name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !ok {
        return Err(format!(
            "invalid platform name `{name}`: use lower-case letters, digits and single `-`s, starting with a letter"
        ));
    }
    let names = Names::new(name);
    let listed = |list: &str, word: &str| list.split_whitespace().any(|w| w == word);
    if listed(RESERVED, name) || listed(TYPES, &names.camel) {
        return Err(format!("`{name}` is reserved"));
    }
    Ok(())
}

/// The spellings of a platform name the templates use.
struct Names {
    /// `my-idp`: registry name, crate suffix, feature.
    name: String,
    /// `my_idp`: Rust paths, test-kit module, file names.
    ident: String,
    /// `MyIdp`: the handler and backend types.
    camel: String,
}

impl Names {
    fn new(name: &str) -> Self {
        let camel = name
            .split('-')
            .map(|part| {
                let mut c = part.chars();
                c.next()
                    .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        Self {
            name: name.to_owned(),
            ident: name.replace('-', "_"),
            camel,
        }
    }

    /// `template` with `{{name}}`, `{{ident}}`, `{{IDENT}}` and `{{Type}}` filled in.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{ident}}", &self.ident)
            .replace("{{IDENT}}", &self.ident.to_ascii_uppercase())
            .replace("{{Type}}", &self.camel)
    }
}

/// Generates the platform `name` in the workspace at `root` (see the module docs) and wires it
/// in. Nothing is written unless every file to create is new and every file to edit could be
/// edited. Returns the files created, then the files edited.
pub fn new_platform(root: &Path, name: &str) -> Result<Vec<PathBuf>> {
    validate_name(name)?;
    let names = Names::new(name);
    let mut created = Vec::new();
    for (path, template) in FILES {
        let path = root.join(names.fill(path));
        if path.exists() {
            return Err(format!("{} already exists", path.display()));
        }
        created.push((path, names.fill(template)));
    }
    let module = root
        .join("crates/testkit/src")
        .join(format!("{}.rs", names.ident));
    if module.exists() {
        return Err(format!("{} already exists", module.display()));
    }
    let edited = vec![
        edit_toml(root, "Cargo.toml", |doc| workspace(doc, &names))?,
        edit_toml(root, "crates/unilogin/Cargo.toml", |doc| {
            facade(doc, &names)
        })?,
        edit_text(root, "crates/unilogin/src/lib.rs", |text| {
            facade_reexport(text, &names)
        })?,
        edit_text(root, "crates/testkit/src/lib.rs", |text| {
            testkit_module(text, &names)
        })?,
        edit_toml(root, "tests/Cargo.toml", |doc| {
            conformance(doc, &names);
            Ok(())
        })?,
    ];
    let mut written = Vec::new();
    for (path, text) in created.iter().chain(&edited) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path.clone());
    }
    format_sources(&created);
    Ok(written)
}

/// Formats the created Rust files with `rustfmt` (the templates are formatted for a short name;
/// a longer one may wrap differently). Best effort: without `rustfmt`, `cargo fmt` does it later.
fn format_sources(created: &[(PathBuf, String)]) {
    let sources: Vec<&PathBuf> = created
        .iter()
        .map(|(path, _)| path)
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let formatted = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&sources)
        .status();
    if !formatted.is_ok_and(|s| s.success()) {
        eprintln!("xtask: rustfmt did not run on the generated files; run `cargo fmt --all`");
    }
}

/// Workspace member and dependency (at the workspace's version, as the other crates are).
fn workspace(doc: &mut DocumentMut, n: &Names) -> Result {
    let members = doc["workspace"]["members"]
        .as_array_mut()
        .ok_or("workspace.members is not an array")?;
    let member = format!("crates/{}", n.name);
    if !members.iter().any(|m| m.as_str() == Some(&member)) {
        push_like_last(members, member.as_str());
    }
    let version = doc["workspace"]["package"]["version"]
        .as_str()
        .ok_or("workspace.package.version is not a string")?
        .to_owned();
    let deps = doc["workspace"]["dependencies"]
        .as_table_like_mut()
        .ok_or("workspace.dependencies is not a table")?;
    let mut dep = InlineTable::new();
    dep.insert("path", member.into());
    dep.insert("version", version.into());
    deps.insert(
        &format!("unilogin-{}", n.name),
        Item::Value(Value::InlineTable(dep)),
    );
    Ok(())
}

/// The facade's optional dependency, feature (in `full` and the CI platform list) and example.
fn facade(doc: &mut DocumentMut, n: &Names) -> Result {
    let (name, krate) = (n.name.as_str(), format!("unilogin-{}", n.name));
    let mut dep = InlineTable::new();
    dep.insert("workspace", true.into());
    dep.insert("optional", true.into());
    doc["dependencies"][&krate] = Item::Value(Value::InlineTable(dep));
    let features = doc["features"]
        .as_table_mut()
        .ok_or("crates/unilogin/Cargo.toml lacks [features]")?;
    features.insert(name, value(Array::from_iter([format!("dep:{krate}")])));
    if let Some(mut key) = features.key_mut(name) {
        let doc_line = format!("## {name}: in-client JSAPI login and web OAuth2.\n");
        key.leaf_decor_mut().set_prefix(doc_line);
    }
    if let Some(full) = features.get_mut("full").and_then(Item::as_array_mut) {
        full.push(name);
    }
    doc["package"]["metadata"]["unilogin"]["platforms"]
        .as_array_mut()
        .ok_or("crates/unilogin/Cargo.toml lacks [package.metadata.unilogin] platforms")?
        .push(name);
    let mut example = Table::new();
    example.insert("name", value(format!("{}_login", n.ident)));
    example.insert("required-features", value(Array::from_iter([name])));
    doc["example"]
        .or_insert(Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or("crates/unilogin/Cargo.toml: `example` is not an array of tables")?
        .push(example);
    Ok(())
}

/// The facade names the crate (so that its registration is linked), after the crates it names.
fn facade_reexport(text: &str, n: &Names) -> Result<String> {
    let block = n.fill(
        "/// {{name}}: in-client JSAPI login and web OAuth2 (feature `{{name}}`).\n\
         #[cfg(feature = \"{{name}}\")]\n\
         #[cfg_attr(docsrs, doc(cfg(feature = \"{{name}}\")))]\n\
         pub use unilogin_{{ident}} as {{ident}};\n",
    );
    let lines: Vec<&str> = text.lines().collect();
    let last_platform = lines
        .iter()
        .rposition(|l| l.starts_with("pub use unilogin_") && l.ends_with(';'));
    Ok(match last_platform {
        Some(i) => {
            let (head, tail) = lines.split_at(i + 1);
            format!("{}\n\n{block}{}\n", head.join("\n"), tail.join("\n"))
        }
        None => format!("{text}\n{block}"),
    })
}

/// `pub mod IDENT;` among the test kit's modules, in the order rustfmt keeps them.
fn testkit_module(text: &str, n: &Names) -> Result<String> {
    let is_mod = |l: &str| {
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.strip_prefix("mod ").is_some_and(|m| m.ends_with(';'))
    };
    let name_of = |l: &str| {
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.trim_start_matches("mod ")
            .trim_end_matches(';')
            .to_owned()
    };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let first = lines
        .iter()
        .position(|l| is_mod(l))
        .ok_or("crates/testkit/src/lib.rs declares no module")?;
    let end = lines[first..]
        .iter()
        .position(|l| !is_mod(l))
        .map_or(lines.len(), |k| first + k);
    let at = (first..end)
        .find(|&i| name_of(&lines[i]) > n.ident)
        .unwrap_or(end);
    lines.insert(at, format!("pub mod {};", n.ident));
    Ok(lines.join("\n") + "\n")
}

/// The conformance suite's dev-dependency on the platform crate.
fn conformance(doc: &mut DocumentMut, n: &Names) {
    let mut dep = Table::new();
    dep.set_dotted(true);
    dep.insert("workspace", value(true));
    doc["dev-dependencies"][&format!("unilogin-{}", n.name)] = Item::Table(dep);
}

/// Appends `item` to `array` on a line of its own when the last element is on one.
fn push_like_last(array: &mut Array, item: impl Into<Value>) {
    let prefix = array
        .iter()
        .last()
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .filter(|p| p.contains('\n'))
        .map(str::to_owned);
    let mut item = item.into();
    if let Some(prefix) = prefix {
        item.decor_mut().set_prefix(prefix);
    }
    array.push_formatted(item);
}

/// `root/rel` edited by `f`: its path and new text.
fn edit_toml(
    root: &Path,
    rel: &str,
    f: impl FnOnce(&mut DocumentMut) -> Result,
) -> Result<(PathBuf, String)> {
    edit_text(root, rel, |text| {
        let mut doc: DocumentMut = text.parse().map_err(|e| format!("parsing: {e}"))?;
        f(&mut doc)?;
        Ok(doc.to_string())
    })
}

/// `root/rel` edited by `f`: its path and new text.
fn edit_text(
    root: &Path,
    rel: &str,
    f: impl FnOnce(&str) -> Result<String>,
) -> Result<(PathBuf, String)> {
    let path = root.join(rel);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let text = f(&text).map_err(|e| format!("{rel}: {e}"))?;
    Ok((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("demo").is_ok());
        assert!(validate_name("my-idp2").is_ok());
        for bad in [
            "",
            "Demo",
            "9x",
            "a_b",
            "x-",
            "a--b",
            "core",
            "full",
            "http",
            "type",
            "base",
            "code-kind",
            "access-token",
            "url",
            &"a".repeat(40),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let n = Names::new("my-idp");
        assert_eq!(
            n.fill("{{name}} {{ident}} {{IDENT}} {{Type}}"),
            "my-idp my_idp MY_IDP MyIdp"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        let n = Names::new("my-idp");
        for (path, template) in FILES {
            let text = n.fill(template) + &n.fill(path);
            assert!(!text.contains("{{"), "{path}: an unknown placeholder");
        }
    }

    #[test]
    fn the_test_kit_module_is_inserted_in_order() {
        let lib = "//! Docs.\n\npub mod calls;\npub mod fake;\nmod table;\npub mod wecom;\n\npub use x;\n";
        let out = testkit_module(lib, &Names::new("my-idp")).unwrap();
        assert_eq!(
            out,
            "//! Docs.\n\npub mod calls;\npub mod fake;\npub mod my_idp;\nmod table;\npub mod wecom;\n\npub use x;\n"
        );
        let out = testkit_module(lib, &Names::new("zeta")).unwrap();
        assert!(
            out.contains("pub mod wecom;\npub mod zeta;\n\npub use x;"),
            "{out}"
        );
    }

    #[test]
    fn the_facade_names_the_crate_after_the_others() {
        let lib = "//! Facade.\n\n/// A.\npub use unilogin_a as a;\n\n/// Tests.\npub struct T;\n";
        let out = facade_reexport(lib, &Names::new("demo")).unwrap();
        assert!(
            out.starts_with("//! Facade.\n\n/// A.\npub use unilogin_a as a;\n\n/// demo: "),
            "{out}"
        );
        assert!(out.ends_with("pub use unilogin_demo as demo;\n\n/// Tests.\npub struct T;\n"));
    }
}
