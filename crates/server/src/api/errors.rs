//! `GET /data/v1/errors`: errors by code and message, with the sessions they
//! touched, for the dashboard's Errors page.
//!
//! The rollups count errors by code only, so the messages come from the
//! sessions themselves: the codes seen in the range (a breakdown by
//! `error_code`) select the sessions that had any error, and their error
//! lists are grouped by (code, message); with an `error_code` filter, only
//! those codes are. At most [`MAX_SESSIONS`] sessions are read; `truncated`
//! says when there were more.

use super::{blocking, flush_session_rows, rfc3339, Query, ReadAuth};
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::Json;
use playhead_model::{Dimension, Millis};
use playhead_store::{GroupBy, GroupKey, SessionQuery};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// Most sessions read for one answer.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorGroup {
    pub code: String,
    pub message: String,
    /// Times it happened.
    pub count: u64,
    /// How many of them were fatal.
    pub fatal: u64,
    /// Distinct sessions it happened in.
    pub sessions: u64,
    /// When it last happened.
    pub last_seen: String,
    /// The session it last happened in, to open it.
    pub last_session_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorList {
    pub from: String,
    pub to: String,
    /// Most frequent first.
    pub errors: Vec<ErrorGroup>,
    /// Sessions with at least one error (those read).
    pub affected_sessions: u64,
    /// More sessions had errors than were read.
    pub truncated: bool,
}

/// Errors by code and message over a range (sessions by start time).
#[utoipa::path(get, path = "/data/v1/errors", tag = "metrics",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = ErrorList), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<ErrorList>, ApiError> {
    let q = Query::parse(raw.as_deref(), state.clock.now_ms(), &[])?;
    let mut filters = q.filters(&property);
    // With an `error_code` filter, only those codes are counted.
    let wanted: Option<Vec<String>> = filters
        .dimensions
        .iter()
        .find(|(d, _)| *d == Dimension::ErrorCode)
        .map(|(_, codes)| codes.clone());
    flush_session_rows(&state).await;
    if wanted.is_none() {
        let store = state.store.clone();
        let by_code = filters.clone();
        let groups =
            blocking(move || store.aggregate(&by_code, &GroupBy::Dimension(Dimension::ErrorCode)))
                .await?;
        let codes: Vec<String> = groups
            .into_keys()
            .filter_map(|k| match k {
                GroupKey::Value(v) => Some(v),
                _ => None,
            })
            .collect();
        filters.dimensions.push((Dimension::ErrorCode, codes));
    }
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut affected = 0_u64;
    let mut truncated = false;
    let mut cursor = None;
    // No code seen: no session can match, and none is read.
    if filters
        .dimensions
        .iter()
        .all(|(_, values)| !values.is_empty())
    {
        loop {
            let query = SessionQuery {
                filters: filters.clone(),
                failed: None,
                limit: 1000,
                cursor: cursor.take(),
            };
            let store = state.store.clone();
            let page = blocking(move || store.list_sessions(&query)).await?;
            for s in &page.sessions {
                if s.metrics.errors.is_empty() {
                    continue;
                }
                affected += 1;
                let counted = s
                    .metrics
                    .errors
                    .iter()
                    .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.code)));
                for e in counted {
                    groups
                        .entry((e.code.clone(), e.message.clone()))
                        .or_default()
                        .add(e.t, e.fatal, &s.key.session_id);
                }
            }
            match page.next_cursor {
                Some(_) if affected as usize >= MAX_SESSIONS => {
                    truncated = true;
                    break;
                }
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    let mut errors: Vec<ErrorGroup> = groups
        .into_iter()
        .map(|((code, message), g)| ErrorGroup {
            code,
            message,
            count: g.count,
            fatal: g.fatal,
            sessions: g.sessions.len() as u64,
            last_seen: rfc3339(g.last_t),
            last_session_id: g.last_session,
        })
        .collect();
    errors.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.message.cmp(&b.message))
    });
    Ok(Json(ErrorList {
        from: rfc3339(q.from),
        to: rfc3339(q.to),
        errors,
        affected_sessions: affected,
        truncated,
    }))
}

/// One (code, message) being counted.
#[derive(Default)]
struct Group {
    count: u64,
    fatal: u64,
    sessions: BTreeSet<String>,
    last_t: Millis,
    last_session: String,
}

impl Group {
    fn add(&mut self, t: Millis, fatal: bool, session: &str) {
        self.count += 1;
        self.fatal += u64::from(fatal);
        self.sessions.insert(session.to_owned());
        if self.last_session.is_empty() || t >= self.last_t {
            self.last_t = t;
            self.last_session = session.to_owned();
        }
    }
}
