//! Every validation rule, each error with its line and field, and many errors reported at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use moat_config::{parse, MapEnv};

/// The errors for `text`, each as `line: field: message`.
fn errors(text: &str) -> Vec<String> {
    let env = MapEnv::new([("SET", "value"), ("NEWLINE", "a\r\nInjected: yes")]);
    match parse(text, "moat.toml", Path::new("/etc/moat"), &env) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(e) => {
            assert_eq!(e.origin, "moat.toml");
            e.errors.iter().map(ToString::to_string).collect()
        }
    }
}

/// A valid provider and model to build on; `extra` is appended.
fn with(extra: &str) -> String {
    format!(
        "[store]\npath = \"moat.db\"\n\
         [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://x.example\"\n\
         [[models]]\nname = \"m\"\ntargets = [{{ provider = \"p\", model = \"x\" }}]\n{extra}"
    )
}
// Lines of `with("")`: 1 [store], 2 path, 3 [[providers]], 4 name, 5 kind, 6 base_url,
// 7 [[models]], 8 name, 9 targets; `extra` starts on line 10.

#[test]
fn the_base_config_is_valid() {
    parse(&with(""), "moat.toml", Path::new(""), &MapEnv::default()).unwrap();
}

#[test]
fn syntax_errors_have_a_line() {
    assert_eq!(
        errors("[store]\npath = \"moat.db\"\n[server\nlisten = 1\n"),
        ["line 3: invalid TOML: invalid table header; expected `.`, `]`"]
    );
    assert_eq!(
        errors("[store]\npath = \"moat.db\npath = 2\n"),
        ["line 2: invalid TOML: invalid basic string"]
    );
    assert_eq!(
        errors("[store]\npath = \"a\"\npath = \"b\"\n"),
        ["line 3: invalid TOML: duplicate key `path` in table `store`"]
    );
}

#[test]
fn unknown_fields_are_named_with_the_allowed_ones() {
    assert_eq!(
        errors(&with("[server]\nlisten = \"127.0.0.1:1\"\nport = 4000\n")),
        ["line 12: server.port: unknown field `port`, expected one of `listen`, `max_body_bytes`, `shutdown_grace`, `read_timeout`, `stream_keepalive`, `trusted_proxies`, `header_read_timeout`, `idle_timeout`, `max_connections`, `max_connections_per_address`, `http2_max_concurrent_streams`, `auth_failures_per_minute`"]
    );
    assert_eq!(
        errors(&with("[keys]\nttl = \"1s\"\n")),
        ["line 11: keys.ttl: unknown field `ttl`, expected `cache_ttl`"]
    );
    assert_eq!(
        errors(&with(
            "[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\", wieght = 2 }]\n"
        )),
        ["line 12: models[1].targets[0].wieght: unknown field `wieght`, expected one of `provider`, `model`, `weight`"]
    );
    assert_eq!(
        errors(&with("[[providers]]\nname = \"q\"\nkind = \"openai\"\nbase_url = \"https://q\"\napi-key = \"k\"\n")),
        ["line 14: providers[1].api-key: unknown field `api-key`, expected one of `name`, `kind`, `base_url`, `api_key`, `connect_timeout`, `first_byte_timeout`, `idle_timeout`, `headers`, `tags`"]
    );
}

#[test]
fn unknown_sections_are_errors() {
    assert_eq!(
        errors(&with("[sever]\nlisten = \"127.0.0.1:1\"\n")),
        ["line 10: sever: unknown section; expected [server], [store], [keys], [[providers]], [[models]], [[filters]], [params], [[tiers]], [detection], [admin], [governance], [[workflows]], [[accounts]], [[prices]], [[routing_rules]], [failover] or [audit]"]
    );
    assert_eq!(
        errors("listen = \"127.0.0.1:1\"\n[store]\npath = \"x\"\n"),
        ["line 1: listen: unknown section; expected [server], [store], [keys], [[providers]], [[models]], [[filters]], [params], [[tiers]], [detection], [admin], [governance], [[workflows]], [[accounts]], [[prices]], [[routing_rules]], [failover] or [audit]"]
    );
}

#[test]
fn wrong_types_are_errors() {
    assert_eq!(
        errors(&with("[server]\nmax_body_bytes = \"32MiB\"\n")),
        ["line 11: server.max_body_bytes: invalid type: string \"32MiB\", expected u64"]
    );
    assert_eq!(
        errors(&with(
            "[[models]]\nname = 7\ntargets = [{ provider = \"p\", model = \"x\" }]\n"
        )),
        ["line 11: models[1].name: invalid type: integer `7`, expected a string"]
    );
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [\"p/x\"]\n")),
        ["line 12: models[1].targets[0]: invalid type: string \"p/x\", expected a target table such as { provider = \"openai\", model = \"gpt-4o\" }"]
    );
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\", weight = -1 }]\n")),
        ["line 12: models[1].targets[0].weight: invalid value: integer `-1`, expected u32"]
    );
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = \"m\"\n")),
        ["line 13: models[1].fallbacks: invalid type: string \"m\", expected a sequence"]
    );
    assert_eq!(
        errors("server = 3\n[store]\npath = \"x\"\n"),
        ["line 1: server: expected a table"]
    );
    assert_eq!(
        errors("providers = \"openai\"\n[store]\npath = \"x\"\n"),
        ["line 1: providers: expected an array of tables: write [[providers]] above each entry"]
    );
    assert_eq!(
        errors("providers = [\"openai\"]\n[store]\npath = \"x\"\n"),
        ["line 1: providers[0]: expected a table"]
    );
}

#[test]
fn bad_listen_addresses_are_errors() {
    assert_eq!(
        errors(&with("[server]\nlisten = \"localhost:4000\"\n")),
        ["line 11: server.listen: invalid listen address \"localhost:4000\": expected IP:port such as \"127.0.0.1:4000\" or \"[::]:4000\""]
    );
    assert_eq!(errors(&with("[server]\nlisten = \"127.0.0.1\"\n")).len(), 1);
    assert_eq!(
        errors(&with("[server]\nlisten = \"127.0.0.1:70000\"\n")).len(),
        1
    );
}

#[test]
fn bad_durations_are_errors() {
    assert_eq!(
        errors(&with("[server]\nshutdown_grace = \"5 fortnights\"\nread_timeout = 30\n[keys]\ncache_ttl = true\n")),
        [
            "line 11: server.shutdown_grace: invalid duration \"5 fortnights\": unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); expected something like \"500ms\", \"30s\" or \"1m 30s\"",
            "line 12: server.read_timeout: expected a duration string such as \"30s\" or \"30ms\", found the bare number 30",
            "line 14: keys.cache_ttl: expected a duration string such as \"30s\", found a value of type boolean",
        ]
    );
}

#[test]
fn zero_timeouts_are_errors_but_zero_grace_and_ttl_are_not() {
    assert_eq!(
        errors(&with("[server]\nread_timeout = \"0s\"\nshutdown_grace = \"0s\"\n[keys]\ncache_ttl = \"0s\"\n")),
        ["line 11: server.read_timeout: must be greater than 0"]
    );
    assert_eq!(
        errors("[store]\npath = \"x\"\n[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x\"\nconnect_timeout = \"0ms\"\nfirst_byte_timeout = \"0s\"\nidle_timeout = \"0m\"\n"),
        [
            "line 7: providers[0].connect_timeout: must be greater than 0",
            "line 8: providers[0].first_byte_timeout: must be greater than 0",
            "line 9: providers[0].idle_timeout: must be greater than 0",
        ]
    );
}

#[test]
fn bad_urls_are_errors() {
    let provider = |url: &str| {
        errors(&format!(
            "[store]\npath = \"x\"\n[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{url}\"\n"
        ))
    };
    assert_eq!(
        provider("api.openai.com/v1"),
        ["line 6: providers[0].base_url: \"api.openai.com/v1\" must start with http:// or https://"]
    );
    assert_eq!(
        provider("https://api.openai.com /v1"),
        ["line 6: providers[0].base_url: \"https://api.openai.com /v1\" must not contain spaces or control characters"]
    );
    assert_eq!(
        provider("https:///v1"),
        ["line 6: providers[0].base_url: \"https:///v1\" must name a host, as in https://api.openai.com/v1"]
    );
}

#[test]
fn zero_max_body_bytes_is_an_error() {
    assert_eq!(
        errors(&with("[server]\nmax_body_bytes = 0\n")),
        ["line 11: server.max_body_bytes: must be greater than 0"]
    );
}

#[test]
fn unknown_kinds_list_the_allowed_ones() {
    assert_eq!(
        errors("[store]\npath = \"x\"\n[[providers]]\nname = \"p\"\nkind = \"gemini\"\nbase_url = \"https://x\"\n"),
        ["line 5: providers[0].kind: unknown kind \"gemini\": expected \"openai\" (any OpenAI-compatible server) or \"anthropic\""]
    );
}

#[test]
fn empty_names_are_errors() {
    assert_eq!(
        errors(&with("[[providers]]\nname = \"\"\nkind = \"openai\"\nbase_url = \"https://q\"\n[[models]]\nname = \" \"\ntargets = [{ provider = \"\", model = \"\" }]\nfallbacks = [\"\"]\n")),
        [
            "line 11: providers[1].name: must not be empty",
            "line 15: models[1].name: must not be empty",
            "line 16: models[1].targets[0].provider: must not be empty",
            "line 16: models[1].targets[0].model: must not be empty",
            "line 17: models[1].fallbacks[0]: must not be empty",
        ]
    );
}

#[test]
fn missing_required_fields_are_errors() {
    assert_eq!(
        errors("[[providers]]\nbase_url = \"https://x\"\n[[models]]\nfallbacks = []\n"),
        [
            "store: missing required section [store] (for example `[store]` then `path = \"moat.db\"`)",
            "line 1: providers[0].name: missing required field",
            "line 1: providers[0].kind: missing required field",
            "line 3: models[0].name: missing required field",
            "line 3: models[0].targets: missing required field",
        ]
    );
    assert_eq!(
        errors("[store]\n"),
        ["line 1: store.path: missing required field"]
    );
    assert_eq!(
        errors(
            "[store]\npath = \"x\"\n[[models]]\nname = \"m\"\ntargets = [{ provider = \"p\" }]\n"
        ),
        ["line 5: models[0].targets[0]: missing field `model`"]
    );
}

#[test]
fn duplicate_names_are_errors() {
    assert_eq!(
        errors(&with("[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://q\"\n[[models]]\nname = \"m\"\ntargets = [{ provider = \"p\", model = \"y\" }]\n")),
        [
            "line 11: providers[1].name: duplicate provider name \"p\" (first defined on line 4)",
            "line 15: models[1].name: duplicate model name \"m\" (first defined on line 8)",
        ]
    );
}

#[test]
fn unknown_providers_and_models_are_errors() {
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\" }, { provider = \"opneai\", model = \"x\" }]\nfallbacks = [\"m\", \"gpt-5\"]\n")),
        [
            "line 12: models[1].targets[1].provider: unknown provider \"opneai\"",
            "line 13: models[1].fallbacks[1]: unknown model \"gpt-5\"",
        ]
    );
}

#[test]
fn a_model_cannot_fall_back_to_itself_or_twice_to_the_same() {
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"n\", \"m\", \"m\"]\n")),
        [
            "line 13: models[1].fallbacks[0]: a model cannot fall back to itself",
            "line 13: models[1].fallbacks[2]: duplicate fallback \"m\"",
        ]
    );
}

#[test]
fn fallback_cycles_are_reported_once_with_their_path() {
    let text = "[store]\npath = \"x\"\n\
        [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"https://x\"\n\
        [[models]]\nname = \"a\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"b\"]\n\
        [[models]]\nname = \"b\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"a\", \"c\"]\n\
        [[models]]\nname = \"c\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"d\"]\n\
        [[models]]\nname = \"d\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"b\"]\n";
    assert_eq!(
        errors(text),
        [
            "line 10: models[0].fallbacks[0]: fallback cycle: a -> b -> a",
            "line 14: models[1].fallbacks[1]: fallback cycle: b -> c -> d -> b",
        ]
    );
}

#[test]
fn weights_must_be_at_least_one_and_targets_not_empty() {
    assert_eq!(
        errors(&with("[[models]]\nname = \"n\"\ntargets = [{ provider = \"p\", model = \"x\", weight = 0 }]\n[[models]]\nname = \"o\"\ntargets = []\n")),
        [
            "line 12: models[1].targets[0].weight: must be at least 1 (remove the target to stop using it)",
            "line 15: models[2].targets: must list at least one target, such as { provider = \"openai\", model = \"gpt-4o\" }",
        ]
    );
}

#[test]
fn unresolved_and_malformed_env_references_are_errors() {
    assert_eq!(
        errors(&with("[server]\nlisten = \"${SET}:${LISTEN_PORT}\"\n[[providers]]\nname = \"q\"\nkind = \"openai\"\nbase_url = \"https://${HOST\"\napi_key = \"${MISSING_KEY}\"\n")),
        [
            "line 11: server.listen: environment variable \"LISTEN_PORT\" is not set (write ${LISTEN_PORT:-default} to give a default)",
            "line 15: providers[1].base_url: unterminated \"${\": expected ${VAR} or ${VAR:-default} (write $$ for a literal $)",
            "line 16: providers[1].api_key: environment variable \"MISSING_KEY\" is not set (write ${MISSING_KEY:-default} to give a default)",
        ]
    );
    assert_eq!(
        errors(&with("[[models]]\nname = \"${model-name}\"\ntargets = [{ provider = \"p\", model = \"x\" }]\n")),
        ["line 11: models[1].name: invalid variable reference \"${model-name}\": expected ${VAR} or ${VAR:-default} with VAR made of letters, digits and _"]
    );
}

#[test]
fn bad_headers_and_keys_are_errors_and_values_are_not_echoed() {
    let errs = errors(&with("[[providers]]\nname = \"q\"\nkind = \"openai\"\nbase_url = \"https://q\"\napi_key = \"${NEWLINE}\"\nheaders = { \"x extra\" = \"v\", x-inject = \"${NEWLINE}\", X-A = \"1\", x-a = \"2\" }\n"));
    assert_eq!(
        errs,
        [
            "line 14: providers[1].api_key: must not contain line breaks or other control characters",
            "line 15: providers[1].headers.\"x extra\": invalid header name: use letters, digits and - (an HTTP token)",
            "line 15: providers[1].headers.x-a: duplicate header (header names are case-insensitive)",
            "line 15: providers[1].headers.x-inject: header value must not contain line breaks or other control characters",
        ]
    );
    assert!(errs.iter().all(|e| !e.contains("Injected")));
}

#[test]
fn one_table_can_report_several_errors() {
    let text = "[store]\npath = \"x\"\n\
        [[providers]]\nname = \"p\"\nkind = 1\nbase_url = \"x.example\"\ntimeout = \"5s\"\nidle_timeout = 60\n";
    assert_eq!(
        errors(text),
        [
            "line 5: providers[0].kind: invalid type: integer `1`, expected a string",
            "line 6: providers[0].base_url: \"x.example\" must start with http:// or https://",
            "line 7: providers[0].timeout: unknown field `timeout`, expected one of `name`, `kind`, `base_url`, `api_key`, `connect_timeout`, `first_byte_timeout`, `idle_timeout`, `headers`, `tags`",
            "line 8: providers[0].idle_timeout: expected a duration string such as \"60s\" or \"60ms\", found the bare number 60",
        ]
    );
}

#[test]
fn an_unreadable_provider_name_does_not_make_every_target_unknown() {
    let text = "[store]\npath = \"x\"\n\
        [[providers]]\nname = [\"p\"]\nkind = \"openai\"\nbase_url = \"https://x\"\n\
        [[models]]\nname = \"m\"\ntargets = [{ provider = \"p\", model = \"x\" }]\nfallbacks = [\"gone\"]\n";
    assert_eq!(
        errors(text),
        [
            "line 4: providers[0].name: invalid type: sequence, expected a string",
            "line 10: models[0].fallbacks[0]: unknown model \"gone\"",
        ]
    );
}

#[test]
fn many_mistakes_are_all_reported() {
    let text = r#"[server]
listen = "localhost:4000"
max_body_bytes = 0

[store]
path = "moat.db"

[[providers]]
name = "openai"
kind = "open-ai"
base_url = "https://api.openai.com/v1"
api_key = "${OPENAI_API_KEY}"

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "api.anthropic.com"
timeout = "5s"

[[models]]
name = "gpt-4o"
targets = [{ provider = "openai", model = "gpt-4o", weight = 0 }]
fallbacks = ["claude-sonnet"]

[[models]]
name = "claude-sonnet"
targets = [{ provider = "antropic", model = "claude-sonnet-4-5" }]
fallbacks = ["gpt-4o", "gpt-5"]
"#;
    let err = parse(text, "moat.toml", Path::new(""), &MapEnv::default()).unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn filter_mistakes_are_reported_with_line_and_field() {
    let text = with(
        "[[filters]]\nname = \"x\"\nfile = \"rules/x.txt\"\naction = \"deny\"\napplies_to = [\"assistant\"]\ntiers = [\"gold\"]\n\
         [[filters]]\nname = \"x\"\naction = \"flag\"\napplies_to = []\n\
         [[filters]]\nname = \"y\"\nfile = \"y.txt\"\naction = \"block\"\nscope = \"all\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "line 13: filters[0].action: unknown action \"deny\": expected \"block\" (refuse with 403) or \"flag\" (pass, count and record)",
            "line 14: filters[0].applies_to[0]: unknown part \"assistant\": expected \"system\" or \"user\"",
            "line 15: filters[0].tiers[0]: unknown tier \"gold\": expected \"default\" or a name from [[tiers]]",
            "line 16: filters[1].file: missing required field",
            "line 17: filters[1].name: duplicate filter name \"x\" (first defined on line 11)",
            "line 19: filters[1].applies_to: must name \"system\", \"user\" or both (leave it out for both)",
            "line 24: filters[2].scope: unknown field `scope`, expected one of `name`, `file`, `action`, `applies_to`, `tiers`, `workflows`",
        ]
    );
}

#[test]
fn tier_mistakes_are_reported_with_line_and_field() {
    let text = with(
        "[params]\nmax_n = 0\nmax_top_logprobs = -1\nmax_tokens = \"lots\"\n\
         [[tiers]]\nname = \"default\"\n\
         [[tiers]]\nname = \"research\"\naccounts = [\"a\", \"b\"]\n\
         [tiers.params]\nmax_n = true\n\
         [[tiers]]\nname = \"gold\"\naccounts = [\"b\", \"c\", \"c\"]\n\
         [[tiers]]\nname = \"research\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "line 11: params.max_n: must be at least 1 (or \"unlimited\")",
            "line 12: params.max_top_logprobs: must be at least 0 (or \"unlimited\")",
            "line 13: params.max_tokens: invalid value \"lots\": expected an integer of at least 1, or \"unlimited\"",
            "line 15: tiers[0].name: the tier \"default\" holds every account in no other tier; set its policy in [params] instead",
            "line 20: tiers[1].params.max_n: expected an integer of at least 1, or \"unlimited\", found a value of type boolean",
            "line 23: tiers[2].accounts[0]: account \"b\" is already in tier \"research\" on line 18; an account is in one tier",
            "line 23: tiers[2].accounts[2]: duplicate account \"c\" in this tier",
            "line 25: tiers[3].name: duplicate tier name \"research\" (first defined on line 17)",
        ]
    );
}

#[test]
fn connection_limits_are_checked() {
    assert_eq!(
        errors(&with("[server]\nheader_read_timeout = \"0s\"\nidle_timeout = 5\nmax_connections = 0\nhttp2_max_concurrent_streams = 0\nauth_failures_per_minute = -1\n")),
        [
            "line 11: server.header_read_timeout: must be greater than 0",
            "line 12: server.idle_timeout: expected a duration string such as \"5s\" or \"5ms\", found the bare number 5",
            "line 13: server.max_connections: must be between 1 and 1000000",
            "line 14: server.http2_max_concurrent_streams: must be between 1 and 10000",
            "line 15: server.auth_failures_per_minute: must be between 0 and 60000",
        ]
    );
    assert_eq!(
        errors(&with(
            "[server]\nmax_connections = 100\nmax_connections_per_address = 101\n"
        )),
        ["line 12: server.max_connections_per_address: must not exceed max_connections (100)"]
    );
}
