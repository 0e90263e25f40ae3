//! Aggregates over sessions (`spec/metrics.md` "Aggregates over sessions").
//!
//! An [`Aggregate`] is a mergeable summary of any set of sessions: sums,
//! counts, a percentile sketch of startup times and a distinct-viewer
//! sketch. Stores keep one per minute × dimensions (a rollup) and merge them
//! at query time; [`Aggregate::metrics`] turns the merge into the API's numbers.
//!
//! Both sketches start exact and switch to a sketch only when large:
//! startup percentiles are exact (nearest rank) up to [`EXACT_QUANTILE_LIMIT`]
//! values, then a DDSketch with 1 % relative error; distinct viewers are
//! exact up to 100,000, then HyperLogLog++ at precision 14 (≈ 0.8 % error).

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use playhead_model::hash::{stable_hash, StableBuildHasher};
use playhead_model::{AdQuartiles, SessionSummary};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as DdConfig, DDSketch};
use std::collections::{BTreeMap, BTreeSet};

/// Exact percentiles up to this many values.
pub const EXACT_QUANTILE_LIMIT: usize = 10_000;
/// Exact distinct counts up to this many viewers.
pub const EXACT_DISTINCT_LIMIT: usize = 100_000;
const HLL_PRECISION: u8 = 14;

/// Startup times, for percentiles.
#[derive(Clone, Serialize, Deserialize)]
pub enum Quantiles {
    Exact(Vec<f64>),
    Sketch(DDSketch),
}

impl Default for Quantiles {
    fn default() -> Self {
        Quantiles::Exact(Vec::new())
    }
}

fn new_ddsketch() -> DDSketch {
    // 1 % relative accuracy; enough bins for 1 ms .. 1 day.
    DDSketch::new(DdConfig::new(0.01, 4096, 1.0e-3))
}

impl std::fmt::Debug for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantiles::Exact(v) => write!(f, "Quantiles::Exact({} values)", v.len()),
            Quantiles::Sketch(s) => write!(f, "Quantiles::Sketch({} values)", s.count()),
        }
    }
}

impl Quantiles {
    pub fn add(&mut self, v: f64) {
        match self {
            Quantiles::Exact(values) => {
                values.push(v);
                if values.len() > EXACT_QUANTILE_LIMIT {
                    self.make_sketch();
                }
            }
            Quantiles::Sketch(s) => s.add(v),
        }
    }

    fn make_sketch(&mut self) {
        if let Quantiles::Exact(values) = self {
            let mut s = new_ddsketch();
            for v in values.iter() {
                s.add(*v);
            }
            *self = Quantiles::Sketch(s);
        }
    }

    pub fn merge(&mut self, other: &Quantiles) {
        match other {
            Quantiles::Exact(values) => {
                for v in values {
                    self.add(*v);
                }
            }
            Quantiles::Sketch(o) => {
                self.make_sketch();
                if let Quantiles::Sketch(s) = self {
                    // Same config on both sides: merge cannot fail.
                    let _ = s.merge(o);
                }
            }
        }
    }

    pub fn count(&self) -> usize {
        match self {
            Quantiles::Exact(v) => v.len(),
            Quantiles::Sketch(s) => s.count(),
        }
    }

    /// The `q` quantile (0..=1): nearest rank while exact.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Quantiles::Exact(values) => {
                if values.is_empty() {
                    return None;
                }
                let mut sorted = values.clone();
                sorted.sort_by(f64::total_cmp);
                let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
                sorted.get(rank.min(sorted.len()) - 1).copied()
            }
            Quantiles::Sketch(s) => s.quantile(q).ok().flatten(),
        }
    }
}

/// Distinct viewers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Distinct {
    Exact(BTreeSet<u64>),
    Sketch(HyperLogLogPlus<u64, StableBuildHasher>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(BTreeSet::new())
    }
}

impl Distinct {
    pub fn insert_hash(&mut self, h: u64) {
        match self {
            Distinct::Exact(set) => {
                set.insert(h);
                if set.len() > EXACT_DISTINCT_LIMIT {
                    self.make_sketch();
                }
            }
            Distinct::Sketch(hll) => hll.insert(&h),
        }
    }

    pub fn insert(&mut self, viewer_id: &str) {
        self.insert_hash(stable_hash(viewer_id.as_bytes()));
    }

    fn make_sketch(&mut self) {
        if let Distinct::Exact(set) = self {
            let mut hll = HyperLogLogPlus::new(HLL_PRECISION, StableBuildHasher)
                .expect("precision 14 is valid");
            for h in set.iter() {
                hll.insert(h);
            }
            *self = Distinct::Sketch(hll);
        }
    }

    pub fn merge(&mut self, other: &Distinct) {
        match other {
            Distinct::Exact(set) => {
                for h in set {
                    self.insert_hash(*h);
                }
            }
            Distinct::Sketch(o) => {
                self.make_sketch();
                if let Distinct::Sketch(hll) = self {
                    // Same precision on both sides: merge cannot fail.
                    let _ = hll.merge(o);
                }
            }
        }
    }

    pub fn count(&mut self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(hll) => hll.count().round() as u64,
        }
    }
}

/// Sum and count of a score, for its mean.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Mean {
    pub sum: f64,
    pub count: u64,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.sum += v;
            self.count += 1;
        }
    }
    fn merge(&mut self, o: &Mean) {
        self.sum += o.sum;
        self.count += o.count;
    }
    fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// A mergeable summary of a set of sessions.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Aggregate {
    pub views: u64,
    pub plays: u64,
    pub play_requested: u64,
    pub failed: u64,
    pub exit_before_start: u64,
    pub completed: u64,
    pub watch_time_ms: f64,
    pub playing_time_ms: f64,
    pub rebuffer_time_ms: f64,
    pub rebuffer_count: u64,
    /// Σ bitrate × main-content playing time, and that playing time.
    pub bitrate_weighted: f64,
    pub bitrate_time_ms: f64,
    pub ad_impressions: u64,
    pub ads_started: u64,
    pub ads_completed: u64,
    pub ad_quartiles: AdQuartiles,
    pub startup_score: Mean,
    pub smoothness_score: Mean,
    pub playback_success_score: Mean,
    pub viewer_experience_score: Mean,
    /// The sketches are stored apart from the sums ([`Aggregate::encode`]).
    #[serde(skip)]
    pub startup: Quantiles,
    #[serde(skip)]
    pub viewers: Distinct,
    /// Distinct viewers of the sessions with `played` (the vendor's "unique plays").
    #[serde(skip)]
    pub play_viewers: Distinct,
    /// Error count by code.
    pub errors: BTreeMap<String, u64>,
    /// Adobe vendor sums (`spec/protocols.md` §2 "Metrics as the vendor defines them").
    pub content_starts: u64,
    pub media_time_spent_ms: f64,
    pub stall_count: u64,
    pub resumes: u64,
}

/// Sketch sizes above which a stored rollup row keeps a sketch instead of
/// exact values (see [`Aggregate::compact`]).
pub const ROW_EXACT_DISTINCT: usize = 1_024;
pub const ROW_EXACT_QUANTILES: usize = 1_024;

/// Which parts of stored aggregates a query needs: the sums alone answer
/// every metric but distinct counts and startup percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    All,
    /// Sums, counts, means and errors; `startup`, `viewers` and
    /// `play_viewers` are left empty.
    Sums,
}

impl Parts {
    /// The parts a metric of [`METRIC_NAMES`] needs.
    pub fn for_metric(name: &str) -> Parts {
        match name {
            "unique_viewers"
            | "unique_plays"
            | "startup_time_ms_p50"
            | "startup_time_ms_p90"
            | "startup_time_ms_p95" => Parts::All,
            _ => Parts::Sums,
        }
    }
}

/// The sketches of an aggregate, stored apart from its sums.
#[derive(Serialize, Deserialize)]
struct Sketches {
    startup: Quantiles,
    viewers: Distinct,
    play_viewers: Distinct,
}

impl Aggregate {
    /// Make a stored rollup row small and quick to read: past
    /// [`ROW_EXACT_DISTINCT`] viewers or [`ROW_EXACT_QUANTILES`] startup
    /// times, keep the sketch instead of the exact values. A query merging
    /// only exact rows stays exact up to the limits of [`Distinct`] and
    /// [`Quantiles`]; one merging a sketched row answers from sketches.
    pub fn compact(&mut self) {
        for d in [&mut self.viewers, &mut self.play_viewers] {
            if matches!(d, Distinct::Exact(set) if set.len() > ROW_EXACT_DISTINCT) {
                d.make_sketch();
            }
        }
        if matches!(&self.startup, Quantiles::Exact(v) if v.len() > ROW_EXACT_QUANTILES) {
            self.startup.make_sketch();
        }
    }

    /// Binary encoding for storage: (sums, sketches), read back by
    /// [`Aggregate::decode`].
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let sketches = SketchesRef {
            startup: &self.startup,
            viewers: &self.viewers,
            play_viewers: &self.play_viewers,
        };
        (
            bincode::serialize(self).expect("an aggregate always encodes"),
            bincode::serialize(&sketches).expect("sketches always encode"),
        )
    }

    /// Decode what [`Aggregate::encode`] wrote; without `sketches`, the
    /// sketches are empty ([`Parts::Sums`]).
    pub fn decode(sums: &[u8], sketches: Option<&[u8]>) -> Result<Aggregate, bincode::Error> {
        let mut agg: Aggregate = bincode::deserialize(sums)?;
        if let Some(bytes) = sketches {
            let s: Sketches = bincode::deserialize(bytes)?;
            agg.startup = s.startup;
            agg.viewers = s.viewers;
            agg.play_viewers = s.play_viewers;
        }
        Ok(agg)
    }
}

#[derive(Serialize)]
struct SketchesRef<'a> {
    startup: &'a Quantiles,
    viewers: &'a Distinct,
    play_viewers: &'a Distinct,
}

impl Aggregate {
    pub fn add_session(&mut self, s: &SessionSummary) {
        let m = &s.metrics;
        self.views += 1;
        self.plays += u64::from(m.played);
        self.play_requested += u64::from(m.play_requested);
        self.failed += u64::from(m.failed);
        self.exit_before_start += u64::from(m.exit_before_start);
        self.completed += u64::from(m.completed);
        self.watch_time_ms += m.watch_time_ms;
        self.playing_time_ms += m.playing_time_ms;
        self.rebuffer_time_ms += m.rebuffer_time_ms;
        self.rebuffer_count += m.rebuffer_count;
        if let Some(b) = m.bitrate_avg_bps {
            if m.playing_time_ms > 0.0 {
                self.bitrate_weighted += b * m.playing_time_ms;
                self.bitrate_time_ms += m.playing_time_ms;
            }
        }
        self.ad_impressions += m.ad_impressions;
        self.ads_started += m.ads_started;
        self.ads_completed += m.ads_completed;
        self.ad_quartiles.first += m.ad_quartiles.first;
        self.ad_quartiles.mid += m.ad_quartiles.mid;
        self.ad_quartiles.third += m.ad_quartiles.third;
        self.startup_score.add(m.startup_score);
        self.smoothness_score.add(m.smoothness_score);
        self.playback_success_score.add(m.playback_success_score);
        self.viewer_experience_score.add(m.viewer_experience_score);
        if let Some(st) = m.startup_time_ms {
            self.startup.add(st);
        }
        if let Some(v) = s.meta.viewer_id.as_deref() {
            self.viewers.insert(v);
            if m.played {
                self.play_viewers.insert(v);
            }
        }
        for e in &m.errors {
            *self.errors.entry(e.code.clone()).or_default() += 1;
        }
        self.content_starts += u64::from(m.content_started);
        self.media_time_spent_ms += m.media_time_spent_ms;
        self.stall_count += m.stall_count;
        self.resumes += u64::from(m.resumed);
    }

    pub fn merge(&mut self, o: &Aggregate) {
        self.views += o.views;
        self.plays += o.plays;
        self.play_requested += o.play_requested;
        self.failed += o.failed;
        self.exit_before_start += o.exit_before_start;
        self.completed += o.completed;
        self.watch_time_ms += o.watch_time_ms;
        self.playing_time_ms += o.playing_time_ms;
        self.rebuffer_time_ms += o.rebuffer_time_ms;
        self.rebuffer_count += o.rebuffer_count;
        self.bitrate_weighted += o.bitrate_weighted;
        self.bitrate_time_ms += o.bitrate_time_ms;
        self.ad_impressions += o.ad_impressions;
        self.ads_started += o.ads_started;
        self.ads_completed += o.ads_completed;
        self.ad_quartiles.first += o.ad_quartiles.first;
        self.ad_quartiles.mid += o.ad_quartiles.mid;
        self.ad_quartiles.third += o.ad_quartiles.third;
        self.startup_score.merge(&o.startup_score);
        self.smoothness_score.merge(&o.smoothness_score);
        self.playback_success_score.merge(&o.playback_success_score);
        self.viewer_experience_score
            .merge(&o.viewer_experience_score);
        self.startup.merge(&o.startup);
        self.viewers.merge(&o.viewers);
        self.play_viewers.merge(&o.play_viewers);
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.content_starts += o.content_starts;
        self.media_time_spent_ms += o.media_time_spent_ms;
        self.stall_count += o.stall_count;
        self.resumes += o.resumes;
    }

    /// The aggregate metrics of `spec/metrics.md` (without `concurrent_viewers`,
    /// which needs session intervals, not sums).
    pub fn metrics(&self) -> AggregateMetrics {
        let mut viewers = self.viewers.clone();
        let mut play_viewers = self.play_viewers.clone();
        let pct = |n: u64, d: u64| {
            if d > 0 {
                100.0 * n as f64 / d as f64
            } else {
                0.0
            }
        };
        let div = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
        AggregateMetrics {
            views: self.views,
            unique_viewers: viewers.count(),
            plays: self.plays,
            unique_plays: play_viewers.count(),
            play_rate: div(self.plays as f64, self.views as f64),
            watch_time_ms: self.watch_time_ms,
            playing_time_ms: self.playing_time_ms,
            avg_watch_time_ms: div(self.watch_time_ms, self.plays as f64),
            startup_time_ms_p50: self.startup.quantile(0.50),
            startup_time_ms_p90: self.startup.quantile(0.90),
            startup_time_ms_p95: self.startup.quantile(0.95),
            rebuffer_percentage: div(self.rebuffer_time_ms, self.watch_time_ms),
            rebuffer_frequency: div(self.rebuffer_count as f64, self.watch_time_ms / 60_000.0),
            playback_failure_percentage: pct(self.failed, self.play_requested),
            exit_before_start_percentage: pct(self.exit_before_start, self.play_requested),
            completion_rate: div(self.completed as f64, self.plays as f64),
            bitrate_avg_bps: (self.bitrate_time_ms > 0.0)
                .then(|| self.bitrate_weighted / self.bitrate_time_ms),
            ad_impressions: self.ad_impressions,
            ads_started: self.ads_started,
            ads_completed: self.ads_completed,
            ad_completion_rate: div(self.ads_completed as f64, self.ads_started as f64),
            ad_quartiles: self.ad_quartiles,
            startup_score: self.startup_score.value(),
            smoothness_score: self.smoothness_score.value(),
            playback_success_score: self.playback_success_score.value(),
            viewer_experience_score: self.viewer_experience_score.value(),
            concurrent_viewers: 0,
            errors: self.errors.clone(),
            content_starts: self.content_starts,
            media_time_spent_ms: self.media_time_spent_ms,
            stall_count: self.stall_count,
            resumes: self.resumes,
        }
    }
}

/// The aggregate metrics, under their API names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateMetrics {
    pub views: u64,
    pub unique_viewers: u64,
    pub plays: u64,
    /// Distinct viewers among the plays.
    pub unique_plays: u64,
    pub play_rate: f64,
    pub watch_time_ms: f64,
    pub playing_time_ms: f64,
    pub avg_watch_time_ms: f64,
    pub startup_time_ms_p50: Option<f64>,
    pub startup_time_ms_p90: Option<f64>,
    pub startup_time_ms_p95: Option<f64>,
    pub rebuffer_percentage: f64,
    pub rebuffer_frequency: f64,
    pub playback_failure_percentage: f64,
    pub exit_before_start_percentage: f64,
    pub completion_rate: f64,
    pub bitrate_avg_bps: Option<f64>,
    pub ad_impressions: u64,
    pub ads_started: u64,
    pub ads_completed: u64,
    pub ad_completion_rate: f64,
    pub ad_quartiles: AdQuartiles,
    pub startup_score: Option<f64>,
    pub smoothness_score: Option<f64>,
    pub playback_success_score: Option<f64>,
    pub viewer_experience_score: Option<f64>,
    /// Maximum concurrently open sessions over the range (filled by the query layer).
    pub concurrent_viewers: u64,
    pub errors: BTreeMap<String, u64>,
    /// Adobe "content starts": sessions with a first frame on main content.
    pub content_starts: u64,
    /// Adobe "media time spent": playing time with ads (ms).
    pub media_time_spent_ms: f64,
    /// Adobe stalls (unmoving playhead for ≥ 3 events while playing).
    pub stall_count: u64,
    /// Adobe "content resumes".
    pub resumes: u64,
}

/// Names of the numeric aggregate metrics a timeseries or breakdown can use.
pub const METRIC_NAMES: [&str; 30] = [
    "views",
    "unique_viewers",
    "plays",
    "unique_plays",
    "play_rate",
    "watch_time_ms",
    "playing_time_ms",
    "avg_watch_time_ms",
    "startup_time_ms_p50",
    "startup_time_ms_p90",
    "startup_time_ms_p95",
    "rebuffer_percentage",
    "rebuffer_frequency",
    "playback_failure_percentage",
    "exit_before_start_percentage",
    "completion_rate",
    "bitrate_avg_bps",
    "ad_impressions",
    "ads_started",
    "ads_completed",
    "ad_completion_rate",
    "startup_score",
    "smoothness_score",
    "playback_success_score",
    "viewer_experience_score",
    "concurrent_viewers",
    "content_starts",
    "media_time_spent_ms",
    "stall_count",
    "resumes",
];

impl AggregateMetrics {
    /// One numeric metric by name (`None`: undefined for this set).
    pub fn get(&self, name: &str) -> Result<Option<f64>, String> {
        let v = |x: u64| Some(x as f64);
        Ok(match name {
            "views" => v(self.views),
            "unique_viewers" => v(self.unique_viewers),
            "plays" => v(self.plays),
            "unique_plays" => v(self.unique_plays),
            "play_rate" => Some(self.play_rate),
            "watch_time_ms" => Some(self.watch_time_ms),
            "playing_time_ms" => Some(self.playing_time_ms),
            "avg_watch_time_ms" => Some(self.avg_watch_time_ms),
            "startup_time_ms_p50" => self.startup_time_ms_p50,
            "startup_time_ms_p90" => self.startup_time_ms_p90,
            "startup_time_ms_p95" => self.startup_time_ms_p95,
            "rebuffer_percentage" => Some(self.rebuffer_percentage),
            "rebuffer_frequency" => Some(self.rebuffer_frequency),
            "playback_failure_percentage" => Some(self.playback_failure_percentage),
            "exit_before_start_percentage" => Some(self.exit_before_start_percentage),
            "completion_rate" => Some(self.completion_rate),
            "bitrate_avg_bps" => self.bitrate_avg_bps,
            "ad_impressions" => v(self.ad_impressions),
            "ads_started" => v(self.ads_started),
            "ads_completed" => v(self.ads_completed),
            "ad_completion_rate" => Some(self.ad_completion_rate),
            "startup_score" => self.startup_score,
            "smoothness_score" => self.smoothness_score,
            "playback_success_score" => self.playback_success_score,
            "viewer_experience_score" => self.viewer_experience_score,
            "concurrent_viewers" => v(self.concurrent_viewers),
            "content_starts" => v(self.content_starts),
            "media_time_spent_ms" => Some(self.media_time_spent_ms),
            "stall_count" => v(self.stall_count),
            "resumes" => v(self.resumes),
            other => {
                return Err(format!(
                    "unknown metric `{other}`; valid: {}",
                    METRIC_NAMES.join(", ")
                ))
            }
        })
    }
}
