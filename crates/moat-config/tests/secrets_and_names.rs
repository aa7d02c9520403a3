//! Config secrets never echoed (credentials in a `base_url`, in whatever message quotes it) and
//! workflow names restricted to a safe charset and length, in the file and in a workflow spec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use moat_config::{check_workflow_name, parse, MapEnv, WorkflowSpec};

fn errors(text: &str) -> Vec<String> {
    let env = MapEnv::new([("URL", "https://svc:s3cr3t-pw@llm.internal.test/v1")]);
    match parse(text, "moat.toml", Path::new("/etc/moat"), &env) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

fn provider(url: &str) -> String {
    format!("[store]\npath = \"x\"\n[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{url}\"\n")
}

#[test]
fn credentials_in_a_base_url_are_refused_without_being_echoed() {
    assert_eq!(
        errors(&provider("https://bob:hunter2@api.x.test/v1")),
        ["line 6: providers[0].base_url: \"https://***@api.x.test/v1\" must not contain credentials; use api_key or headers"]
    );
    // From the environment too.
    assert_eq!(
        errors(&provider("${URL}")),
        ["line 6: providers[0].base_url: \"https://***@llm.internal.test/v1\" must not contain credentials; use api_key or headers"]
    );
    assert_eq!(
        errors(&provider("https://api.x.test/v1?key=AIzaSecret123&x=1")),
        ["line 6: providers[0].base_url: \"https://api.x.test/v1?key=***&x=***\" must not contain a query (?) or fragment (#)"]
    );
}

#[test]
fn any_message_quoting_a_url_masks_its_secrets() {
    // A URL where another value belongs: the message quotes it, masked.
    let text = "[server]\nlisten = \"https://bob:hunter2@api.x.test/v1?key=AIzaSecret123\"\n[store]\npath = \"x\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "line 2: server.listen: invalid listen address \"https://***@api.x.test/v1?key=***\""
        ),
        "{errs:?}"
    );
}

#[test]
fn workflow_names_are_a_safe_charset_and_length() {
    for good in ["support-bot", "claims_triage.v2", "A1", &"w".repeat(64)] {
        assert_eq!(check_workflow_name(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "../..",
        "a/b",
        "a\0b",
        ".hidden",
        "-x",
        "with space",
        "é",
        &"w".repeat(65),
    ] {
        let why = check_workflow_name(bad).unwrap_err();
        assert!(
            !bad.is_empty() && why.contains("letters, digits") || why == "must not be empty",
            "{bad:?}: {why}"
        );
    }
}

#[test]
fn a_workflow_with_an_unsafe_name_is_a_config_error_naming_line_and_field() {
    let text = "[store]\npath = \"x\"\n[[workflows]]\nname = \"../../etc\"\nowner = \"me\"\ncriticality = \"low\"\nsensitivity = \"public\"\n[[workflows]]\nname = \"a\\u0000b\"\nowner = \"me\"\ncriticality = \"low\"\nsensitivity = \"public\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("line 4: workflows[0].name: must be 1 to 64 letters"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("line 9: workflows[1].name: must be 1 to 64 letters"),
        "{errs:?}"
    );
    assert!(!errs[1].contains('\0'), "{errs:?}");
}

#[test]
fn a_workflow_spec_with_an_unsafe_name_is_refused() {
    let spec: WorkflowSpec = serde_json::from_value(serde_json::json!({
        "name": "../../x", "owner": "o", "criticality": "low", "sensitivity": "public"
    }))
    .unwrap();
    let problems = spec.to_config().unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("name: must be 1 to 64 letters"),
        "{problems:?}"
    );
}
