//! `[detection]`, `[detection.actions]`, `[detection.model]`, `[admin]` and
//! `server.trusted_proxies`: read, defaulted, and every mistake reported with its line and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use moat_config::{parse, ActionsConfig, Config, DetectionConfig, DetectionMode, MapEnv};

const BASE: &str = "[store]\npath = \"moat.db\"\n";
// `BASE` is two lines; whatever follows starts on line 3.

fn ok(extra: &str, env: &MapEnv) -> Config {
    match parse(
        &format!("{BASE}{extra}"),
        "moat.toml",
        Path::new("/etc/moat"),
        env,
    ) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

fn errors(extra: &str) -> Vec<String> {
    let env = MapEnv::new([("SHORT", "abc"), ("NEWLINE", "a\nb")]);
    match parse(&format!("{BASE}{extra}"), "moat.toml", Path::new(""), &env) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn without_the_sections_detection_monitors_and_the_admin_api_is_off() {
    let c = ok("", &MapEnv::default());
    assert_eq!(c.detection, DetectionConfig::default());
    assert_eq!(c.detection.mode, DetectionMode::Monitor);
    assert_eq!(c.detection.queue, 65_536);
    assert!(c.detection.allowlist.is_empty());
    assert_eq!(
        c.detection.actions,
        ActionsConfig {
            throttle_at: 0.5,
            degrade_at: 0.6,
            block_at: 0.7,
            throttle_rpm: 6,
            degrade_max_tokens: 256,
        }
    );
    assert!(c.detection.model.table.is_empty());
    assert!(c.admin.token.is_none());
    assert!(c.server.trusted_proxies.is_empty());
}

#[test]
fn every_field_is_read() {
    let env = MapEnv::new([("MOAT_ADMIN_TOKEN", "9f8e2c41b7d35a60c1e4")]);
    let c = ok(
        r#"[server]
trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8", "::1"]
[detection]
mode = "enforce"
allowlist = ["acct_licensed", "acct_eval"]
queue = 1024
[detection.actions]
throttle_at = 0.55
degrade_at = 0.65
block_at = 1
throttle_rpm = 3
degrade_max_tokens = 128
[detection.model]
threshold = 12.0
drift = 0.5
[detection.model.weights]
elicit = 1.5
[admin]
token = "${MOAT_ADMIN_TOKEN}"
"#,
        &env,
    );
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    assert_eq!(
        c.server.trusted_proxies,
        vec![net("127.0.0.1/32"), net("10.0.0.0/8"), net("::1/128")]
    );
    let d = &c.detection;
    assert_eq!(d.mode, DetectionMode::Enforce);
    assert_eq!(d.allowlist, ["acct_licensed", "acct_eval"]);
    assert_eq!(d.queue, 1024);
    assert_eq!(
        d.actions,
        ActionsConfig {
            throttle_at: 0.55,
            degrade_at: 0.65,
            block_at: 1.0,
            throttle_rpm: 3,
            degrade_max_tokens: 128,
        }
    );
    assert_eq!(d.model.line, Some(15));
    assert_eq!(d.model.table["threshold"].as_float(), Some(12.0));
    assert_eq!(d.model.table["weights"]["elicit"].as_float(), Some(1.5));
    assert_eq!(
        c.admin.token.as_ref().map(|t| t.expose().as_str()),
        Some("9f8e2c41b7d35a60c1e4")
    );
    assert_eq!(
        format!("{:?}", c.admin),
        "AdminConfig { token: Some(Secret(***)) }"
    );
}

#[test]
fn inline_forms_and_an_empty_token_are_fine() {
    let c = ok(
        "[detection]\nmode = \"off\"\nactions = { block_at = 0.9 }\n[admin]\ntoken = \"${T:-}\"\n",
        &MapEnv::default(),
    );
    assert_eq!(c.detection.mode, DetectionMode::Off);
    assert_eq!(c.detection.actions.block_at, 0.9);
    assert_eq!(c.detection.actions.degrade_at, 0.6);
    assert!(
        c.admin.token.is_none(),
        "an empty token turns the admin API off"
    );
}

#[test]
fn every_mistake_is_reported_with_its_line_and_field() {
    let text = r#"[server]
trusted_proxies = ["10.0.0.0/33", "proxy.local"]
[detection]
mode = "block"
allowlist = ["a", "a", ""]
queue = 0
window = "1h"
[detection.actions]
throttle_at = 0
degrade_at = "high"
block_at = 0.55
throttle_rpm = -1
degrade_max_tokens = 1.5
[detection.model]
threshold = nan
[detection.model.weights]
elicit = inf
[admin]
token = "${SHORT}"
"#;
    assert_eq!(
        errors(text),
        [
            "line 4: server.trusted_proxies[0]: invalid network \"10.0.0.0/33\": expected a CIDR such as \"10.0.0.0/8\" or an address such as \"127.0.0.1\"",
            "line 4: server.trusted_proxies[1]: invalid network \"proxy.local\": expected a CIDR such as \"10.0.0.0/8\" or an address such as \"127.0.0.1\"",
            "line 6: detection.mode: unknown mode \"block\": expected \"off\", \"monitor\" (score and report) or \"enforce\" (score and act)",
            "line 7: detection.allowlist[1]: duplicate account \"a\" in the allowlist",
            "line 7: detection.allowlist[2]: must not be empty",
            "line 8: detection.queue: must be between 1 and 16777216",
            "line 9: detection.window: unknown field `window`, expected one of `mode`, `allowlist`, `queue`, `max_end_users`, `max_end_users_per_account`, `actions`, `model`",
            "line 11: detection.actions.throttle_at: 0 is out of range: expected a score above 0 and at most 1 (0.5 is the detector's threshold; 1 never triggers)",
            "line 12: detection.actions.degrade_at: expected a score above 0 and at most 1 (0.5 is the detector's threshold; 1 never triggers), found a value of type string",
            "line 13: detection.actions.block_at: block_at (0.55) is below degrade_at (0.6): each action must start at or above the one before it (throttle, degrade, block)",
            "line 14: detection.actions.throttle_rpm: must be between 1 and 4294967295",
            "line 15: detection.actions.degrade_max_tokens: expected an integer between 1 and 4294967295, found a value of type float",
            "line 17: detection.model.threshold: NaN is not a finite number",
            "line 18: detection.model.weights.elicit: inf is not a finite number",
            "line 21: admin.token: is too short: use at least 16 characters (for example `openssl rand -hex 32`)",
        ]
    );
}

#[test]
fn unknown_action_fields_do_not_hide_the_other_actions() {
    assert_eq!(
        errors("[detection.actions]\nthrottle_rpms = 6\nblock_at = 2\n"),
        [
            "line 4: detection.actions.throttle_rpms: unknown field `throttle_rpms`, expected one of `throttle_at`, `degrade_at`, `block_at`, `throttle_rpm`, `degrade_max_tokens`",
            "line 5: detection.actions.block_at: 2 is out of range: expected a score above 0 and at most 1 (0.5 is the detector's threshold; 1 never triggers)",
        ]
    );
}

#[test]
fn a_token_with_line_breaks_is_refused_without_being_echoed() {
    let errs = errors("[admin]\ntoken = \"${NEWLINE}\"\n");
    assert_eq!(
        errs,
        ["line 4: admin.token: must not contain spaces, line breaks or other control characters"]
    );
}

#[test]
fn end_user_bounds_are_read_defaulted_and_checked() {
    let c = ok("", &MapEnv::default());
    assert_eq!(c.detection.max_end_users, 100_000);
    assert_eq!(c.detection.max_end_users_per_account, 20_000);
    let c = ok(
        "[detection]\nmax_end_users = 5000\nmax_end_users_per_account = 500\n",
        &MapEnv::default(),
    );
    assert_eq!(
        (
            c.detection.max_end_users,
            c.detection.max_end_users_per_account
        ),
        (5000, 500)
    );
    assert_eq!(
        errors("[detection]\nmax_end_users = 0\nmax_end_users_per_account = \"many\"\n"),
        [
            "line 4: detection.max_end_users: must be between 1 and 10000000",
            "line 5: detection.max_end_users_per_account: expected an integer between 1 and 10000000, found a value of type string",
        ]
    );
    assert_eq!(
        errors("[detection]\nmax_end_users = 1000\n"),
        ["line 4: detection.max_end_users_per_account: max_end_users_per_account (20000) is above max_end_users (1000): an account cannot keep more end users than the detector does"]
    );
}

#[test]
fn a_guessable_token_is_refused_by_its_entropy_not_only_its_length() {
    for weak in [
        "aaaaaaaaaaaaaaaa",
        "abcdefghijklmnop",
        "admin-token-0123456789",
        "passwordpassword1",
    ] {
        let env = MapEnv::new([("WEAK", weak)]);
        let text = format!("{BASE}[admin]\ntoken = \"${{WEAK}}\"\n");
        let errs: Vec<String> = match parse(&text, "moat.toml", Path::new(""), &env) {
            Ok(_) => panic!("{weak} was accepted"),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("line 4: admin.token: is too easy to guess"),
            "{errs:?}"
        );
        assert!(!errs[0].contains(weak), "the token is echoed: {errs:?}");
    }
    // Random tokens of the documented minimum length and of `openssl rand -hex 32` pass.
    for strong in [
        "9f8e2c41b7d35a60",
        "Kx7mP2qR9vL4nW8s",
        "3f9a7c21e8d4b6f05a1c9e7d2b8f4a603f9a7c21e8d4b6f05a1c9e7d2b8f4a60",
    ] {
        let c = ok("[admin]\ntoken = \"${T}\"\n", &MapEnv::new([("T", strong)]));
        assert_eq!(
            c.admin.token.as_ref().map(|t| t.expose().as_str()),
            Some(strong)
        );
    }
}
