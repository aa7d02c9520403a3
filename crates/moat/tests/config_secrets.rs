//! `moat config check` on a file holding secrets in the wrong places: the credentials and query
//! secrets of a `base_url` and a guessable admin token are refused, naming line and field, and
//! none of them reaches the terminal. `moat keys create --workflow` refuses an unsafe name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::moat;

#[test]
fn config_check_refuses_secrets_in_the_wrong_places_without_printing_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("moat.toml");
    std::fs::write(
        &config,
        "[store]\npath = \"moat.db\"\n\
         [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://svc:hunter2@llm.x.test/v1\"\n\
         [[providers]]\nname = \"q\"\nkind = \"openai\"\nbase_url = \"https://llm.x.test/v1?key=AIzaQuerySecret9\"\n\
         [admin]\ntoken = \"${MOAT_ADMIN_TOKEN}\"\n",
    )
    .unwrap();
    let out = moat()
        .args(["config", "check", "--config"])
        .arg(&config)
        .env("MOAT_ADMIN_TOKEN", "aaaaaaaaaaaaaaaa")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in ["hunter2", "AIzaQuerySecret9", "aaaaaaaaaaaaaaaa"] {
        assert!(!all.contains(secret), "{secret} printed: {all}");
    }
    assert!(all.contains("moat.toml:6: providers[0].base_url: \"https://***@llm.x.test/v1\" must not contain credentials"), "{all}");
    assert!(
        all.contains("moat.toml:10: providers[1].base_url: \"https://llm.x.test/v1?key=***\""),
        "{all}"
    );
    assert!(
        all.contains("moat.toml:12: admin.token: is too easy to guess"),
        "{all}"
    );
}

#[test]
fn keys_create_refuses_an_unsafe_workflow_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("moat.toml");
    std::fs::write(&config, "[store]\npath = \"moat.db\"\n").unwrap();
    let out = moat()
        .args([
            "keys",
            "create",
            "--account",
            "a",
            "--workflow",
            "../../etc",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'workflow' must be 1 to 64 letters, digits"),
        "{err}"
    );
}
