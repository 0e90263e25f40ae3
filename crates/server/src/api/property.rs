//! `GET /data/v1/property`: who a read key is, for the dashboard's header
//! and its filter and metric pickers.

use super::ReadAuth;
use axum::Json;
use playhead_engine::rollup::METRIC_NAMES;
use playhead_model::Dimension;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct PropertyView {
    /// The property the read key belongs to.
    pub name: String,
    /// Dimensions that filters and breakdowns take: the built-in ones, then
    /// the protocols' custom-metadata aliases (`contentType`, ...: the User
    /// Activity Vault's, each `custom.<name>`). `custom.<key>` works too;
    /// `property` is left out: the key scopes it already.
    pub dimensions: Vec<String>,
    /// Metrics that timeseries and breakdowns take.
    pub metrics: Vec<String>,
}

/// The property of the read key, with the dimension and metric names.
#[utoipa::path(get, path = "/data/v1/property", tag = "metrics",
    responses((status = 200, body = PropertyView), (status = 401)),
    security(("read_key" = [])))]
pub async fn show(ReadAuth(property): ReadAuth) -> Json<PropertyView> {
    Json(PropertyView {
        name: property,
        dimensions: Dimension::BUILT_IN
            .iter()
            .filter(|d| **d != Dimension::Property)
            .map(Dimension::name)
            .chain(Dimension::CUSTOM_ALIASES.iter().map(|a| (*a).to_owned()))
            .collect(),
        metrics: METRIC_NAMES.iter().map(|m| (*m).to_owned()).collect(),
    })
}
