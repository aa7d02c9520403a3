//! Stage 4, filter: the blocked-pattern lists and the parameter policy of the key's account tier,
//! over a read-only view of the body. The body itself is not touched: what goes upstream is still
//! the client's bytes.
//!
//! Every hit is counted (`moat_filter_hits_total{filter,action}`), logged at info with the
//! request id and kept on the request record as `filter:reason`; parameter refusals are counted
//! in `moat_param_violations_total{reason}`.
//!
//! The same view gives the detector its per-request features (unless detection is off) and the
//! detection gate the parameters and end user it needs, so a body is parsed once.

use crate::error::GatewayError;
use crate::pipeline::Endpoint;
use crate::telemetry::RequestRecord;
use moat_detect::{Extractor, RequestFeatures};
use moat_guard::{Guard, Hit};
use moat_policy::KeyRecord;
use moat_protocol::view::{Params, RequestView, ViewApi};

/// What stage 4 read of a chat body, for the stages after it.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    /// The shape of the body.
    pub api: ViewApi,
    /// Its sampling and output parameters.
    pub params: Params,
    /// The end user it names.
    pub end_user: Option<String>,
    /// The detector's features, unless detection is off.
    pub features: Option<RequestFeatures>,
}

/// Runs the filters and the parameter policy for a request of `key` on `endpoint`, and extracts
/// the detector's features with `extractor`. Endpoints without a chat body (embeddings, token
/// counting) pass unchecked, with nothing inspected.
pub(crate) fn check(
    guard: &Guard,
    endpoint: Endpoint,
    body: &[u8],
    key: &KeyRecord,
    extractor: Option<&Extractor>,
    record: &mut RequestRecord,
) -> Result<Option<Inspected>, GatewayError> {
    let Some(api) = view_api(endpoint) else {
        return Ok(None);
    };
    // A body the view cannot read (a parameter of the wrong type) is refused rather than passed
    // on unjudged.
    let view =
        RequestView::parse(api, body).map_err(|e| GatewayError::invalid(e.to_string(), None))?;
    let tier = guard.tiers.of(&key.account);
    let outcome = guard
        .filters
        .check(&view, &tier.name, key.workflow.as_deref());
    for hit in outcome.flags.iter().chain(&outcome.blocked) {
        note(hit, record, &tier.name);
    }
    if let Some(hit) = outcome.blocked {
        return Err(GatewayError::Blocked {
            filter: hit.filter.to_string(),
            reason: hit.reason.to_string(),
        });
    }
    tier.policy.check(&view.params).map_err(|violation| {
        metrics::counter!("moat_param_violations_total", "reason" => violation.reason).increment(1);
        tracing::info!(
            request_id = %record.request_id,
            account = %key.account,
            tier = %tier.name,
            param = violation.param,
            reason = violation.reason,
            "parameter not allowed"
        );
        GatewayError::ParamNotAllowed(violation)
    })?;
    Ok(Some(Inspected {
        api,
        features: extractor.map(|x| x.extract(&view)),
        // Bounded before anything keeps it: the record, the board and the detector.
        end_user: view
            .end_user
            .map(|u| moat_detect::end_user_id(&u).into_owned()),
        params: view.params,
    }))
}

/// The view of an endpoint's body, for endpoints that carry a conversation.
fn view_api(endpoint: Endpoint) -> Option<ViewApi> {
    match endpoint {
        Endpoint::ChatCompletions => Some(ViewApi::OpenAiChat),
        Endpoint::Responses => Some(ViewApi::OpenAiResponses),
        Endpoint::Messages => Some(ViewApi::AnthropicMessages),
        Endpoint::Embeddings | Endpoint::CountTokens => None,
    }
}

/// Counts, logs and records one filter hit.
fn note(hit: &Hit, record: &mut RequestRecord, tier: &str) {
    let action = hit.action.as_str();
    metrics::counter!(
        "moat_filter_hits_total",
        "filter" => hit.filter.to_string(),
        "action" => action
    )
    .increment(1);
    tracing::info!(
        request_id = %record.request_id,
        account = %record.account.as_deref().unwrap_or(""),
        tier = %tier,
        filter = %hit.filter,
        action,
        reason = %hit.reason,
        part = hit.part.as_str(),
        line = hit.line,
        "filter hit"
    );
    let tag = format!("{}:{}", hit.filter, hit.reason);
    record.decide("filter", action, Some(tag.clone()));
    record.flags.push(tag);
}
