//! Checks between sections: unique names, known providers and models, fallbacks without cycles.

use std::collections::HashMap;

use crate::error::Errors;
use crate::sections::{ModelDraft, NameRef, ProviderDraft};

/// Reports duplicate names and references to names that do not exist.
///
/// `all_*_named` is false when some provider (model) has no readable name: its error is already
/// reported, and "unknown provider" errors would then only be noise from that one mistake.
pub(crate) fn check(
    errors: &mut Errors<'_>,
    providers: &[ProviderDraft],
    all_providers_named: bool,
    models: &[ModelDraft],
    all_models_named: bool,
) {
    let provider_names = first_definitions(errors, providers.iter().map(|p| &p.name), "provider");
    let model_names = first_definitions(errors, models.iter().map(|m| &m.name), "model");

    for model in models {
        for r in &model.providers {
            if all_providers_named && !provider_names.contains_key(r.name.as_str()) {
                let message = format!("unknown provider \"{}\"", r.name);
                errors.push(r.span.clone(), r.field.clone(), message);
            }
        }
        let own_name = model.name.as_ref().map(|n| n.name.as_str());
        for (i, r) in model.fallbacks.iter().enumerate() {
            let message = if own_name == Some(r.name.as_str()) {
                "a model cannot fall back to itself".to_string()
            } else if model.fallbacks[..i].iter().any(|f| f.name == r.name) {
                format!("duplicate fallback \"{}\"", r.name)
            } else if all_models_named && !model_names.contains_key(r.name.as_str()) {
                format!("unknown model \"{}\"", r.name)
            } else {
                continue;
            };
            errors.push(r.span.clone(), r.field.clone(), message);
        }
    }
    cycles(errors, models, &model_names);
}

/// Maps each name to the index of its first definition, reporting later duplicates.
pub(crate) fn first_definitions<'a>(
    errors: &mut Errors<'_>,
    names: impl Iterator<Item = &'a Option<NameRef>>,
    what: &str,
) -> HashMap<&'a str, usize> {
    let mut first: HashMap<&'a str, (usize, Option<usize>)> = HashMap::new();
    for (i, name) in names.enumerate() {
        let Some(name) = name else { continue };
        match first.get(name.name.as_str()) {
            Some((_, line)) => {
                let at = line.map(|l| format!(" (first defined on line {l})"));
                let message = format!(
                    "duplicate {what} name \"{}\"{}",
                    name.name,
                    at.unwrap_or_default()
                );
                errors.push(name.span.clone(), name.field.clone(), message);
            }
            None => {
                let line = name.span.as_ref().map(|s| errors.line_of(s.start));
                first.insert(name.name.as_str(), (i, line));
            }
        }
    }
    first.into_iter().map(|(k, (i, _))| (k, i)).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

/// Reports each fallback cycle once, with its path, at the fallback entry that starts it.
///
/// A depth-first search in file order; the loop keeps its own stack so a long chain of models
/// cannot overflow the thread's stack.
fn cycles(errors: &mut Errors<'_>, models: &[ModelDraft], names: &HashMap<&str, usize>) {
    // edges[m] = (target model, the fallback entry) for the first definition of each name.
    let edges: Vec<Vec<(usize, &NameRef)>> = models
        .iter()
        .enumerate()
        .map(|(m, model)| {
            let is_first = model
                .name
                .as_ref()
                .is_some_and(|n| names.get(n.name.as_str()) == Some(&m));
            if !is_first {
                return Vec::new();
            }
            let mut out: Vec<(usize, &NameRef)> = Vec::new();
            for r in &model.fallbacks {
                if let Some(&to) = names.get(r.name.as_str()) {
                    if to != m && !out.iter().any(|(t, _)| *t == to) {
                        out.push((to, r));
                    }
                }
            }
            out
        })
        .collect();

    let mut mark = vec![Mark::New; models.len()];
    for start in 0..models.len() {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::OnPath;
        // (model, index of the next edge to follow)
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&(node, next)) = path.last() {
            let Some(&(to, _)) = edges[node].get(next) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            match mark[to] {
                Mark::New => {
                    mark[to] = Mark::OnPath;
                    path.push((to, 0));
                }
                Mark::OnPath => report_cycle(errors, models, &edges, &path, to),
                Mark::Done => {}
            }
        }
    }
}

fn report_cycle(
    errors: &mut Errors<'_>,
    models: &[ModelDraft],
    edges: &[Vec<(usize, &NameRef)>],
    path: &[(usize, usize)],
    back_to: usize,
) {
    let Some(pos) = path.iter().position(|(m, _)| *m == back_to) else {
        return;
    };
    let name = |m: usize| models[m].config.name.as_str();
    let mut cycle: Vec<&str> = path[pos..].iter().map(|(m, _)| name(*m)).collect();
    cycle.push(name(back_to));
    // The entry of `back_to` that leads into the cycle is the one it followed last.
    let (start, next) = path[pos];
    if let Some((_, entry)) = next.checked_sub(1).and_then(|e| edges[start].get(e)) {
        let message = format!("fallback cycle: {}", cycle.join(" -> "));
        errors.push(entry.span.clone(), entry.field.clone(), message);
    }
}
