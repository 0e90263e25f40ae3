//! One session's playback, folded event by event: the player state machine
//! and every per-session metric of `spec/metrics.md`.
//!
//! `Playback` is a pure fold: feed it a session's events in (`t`, `order`)
//! order and read `metrics()`. It never looks at a clock; the close time
//! comes in as an argument. The tracker (`tracker.rs`) guarantees the order
//! (rebuilding from the full history when an event arrives late), so the
//! result never depends on arrival order.

use crate::rules::{Accounting, Rules};
use playhead_model::{
    AdQuartiles, ErrorRecord, ErrorSeverity, Event, EventKind, Millis, PlayerState, Qoe,
    SessionMeta, SessionMetrics,
};

/// Errors kept per session (all are counted; the list stops growing here).
const MAX_ERRORS_KEPT: usize = 100;
/// Progress markers, % of the duration.
const PROGRESS_MARKERS: [u8; 5] = [10, 25, 50, 75, 95];
/// A session that never showed a frame counts as exit-before-start only if
/// it closed at least this long after the play request.
const EXIT_BEFORE_START_MIN_MS: Millis = 1_000;
/// Adobe: a stall is the playhead unmoved for this many consecutive events.
const STALL_RUN: u32 = 3;

/// The running fold of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    rules: Rules,
    state: PlayerState,
    /// Inside an ad break: playing time is ad time, playheads are the ad's.
    in_break: bool,
    /// Inside an ad (within a break).
    in_ad: bool,
    /// Where a seek returns to when it ends without `playing` (seek while paused).
    seek_from_paused: bool,
    rate: f64,
    last_key: Option<(Millis, u64, u64)>,
    first_t: Option<Millis>,
    last_t: Option<Millis>,
    play_requested_at: Option<Millis>,
    first_frame_at: Option<Millis>,
    reported_startup_ms: Option<f64>,
    playing_ms: f64,
    ad_playing_ms: f64,
    paused_ms: f64,
    rebuffer_count: u64,
    rebuffer_ms: f64,
    seek_count: u64,
    seek_ms: f64,
    /// Last main-content playhead and when it last changed.
    last_playhead: Option<f64>,
    /// Time of `last_playhead`.
    playhead_time: Option<Millis>,
    playhead_changed_at: Option<Millis>,
    max_playhead: Option<f64>,
    /// Union of played main-content intervals, sorted, disjoint.
    watched: Vec<(f64, f64)>,
    /// Progress mode: the last position report (time, position).
    last_report: Option<(Millis, f64)>,
    /// Reported pauses (`Rules::reported_pauses`): when the pause in force
    /// began, or the last report during it.
    pause_started: Option<Millis>,
    /// Reported pauses: paused ms that began and ended since the last report.
    gap_paused_ms: f64,
    bitrate_bps: Option<u64>,
    bitrate_changes: u64,
    bitrate_weighted: f64,
    bitrate_time_ms: f64,
    dropped_frames: Option<u64>,
    total_frames: Option<u64>,
    errors: Vec<ErrorRecord>,
    fatal: bool,
    /// An Adobe-style error not yet followed by `playing`.
    failure_pending: bool,
    completed: bool,
    /// Explicit close (`viewend`) time.
    closed_at: Option<Millis>,
    ad_breaks: u64,
    ads_started: u64,
    ads_completed: u64,
    ads_skipped: u64,
    ads_ignored: u64,
    ad_impressions: u64,
    ad_quartiles: AdQuartiles,
    clock_skew_corrections: u64,
    content_started: bool,
    stall_count: u64,
    /// Consecutive events, while playing main content, at the same playhead.
    unmoved_run: u32,
}

impl Playback {
    pub fn new(rules: Rules) -> Playback {
        Playback {
            rules,
            state: PlayerState::Init,
            in_break: false,
            in_ad: false,
            seek_from_paused: false,
            rate: 1.0,
            last_key: None,
            first_t: None,
            last_t: None,
            play_requested_at: None,
            first_frame_at: None,
            reported_startup_ms: None,
            playing_ms: 0.0,
            ad_playing_ms: 0.0,
            paused_ms: 0.0,
            rebuffer_count: 0,
            rebuffer_ms: 0.0,
            seek_count: 0,
            seek_ms: 0.0,
            last_playhead: None,
            playhead_time: None,
            playhead_changed_at: None,
            max_playhead: None,
            watched: Vec::new(),
            last_report: None,
            pause_started: None,
            gap_paused_ms: 0.0,
            bitrate_bps: None,
            bitrate_changes: 0,
            bitrate_weighted: 0.0,
            bitrate_time_ms: 0.0,
            dropped_frames: None,
            total_frames: None,
            errors: Vec::new(),
            fatal: false,
            failure_pending: false,
            completed: false,
            closed_at: None,
            ad_breaks: 0,
            ads_started: 0,
            ads_completed: 0,
            ads_skipped: 0,
            ads_ignored: 0,
            ad_impressions: 0,
            ad_quartiles: AdQuartiles::default(),
            clock_skew_corrections: 0,
            content_started: false,
            stall_count: 0,
            unmoved_run: 0,
        }
    }

    /// Fold a whole history (any order): sorts, then applies.
    pub fn replay(rules: Rules, events: &mut [Event]) -> Playback {
        events.sort_by_key(Event::sort_key);
        let mut p = Playback::new(rules);
        for ev in events.iter() {
            p.apply(ev);
        }
        p
    }

    pub fn state(&self) -> PlayerState {
        self.state
    }

    /// The processing key of the last event applied.
    pub fn last_key(&self) -> Option<(Millis, u64, u64)> {
        self.last_key
    }

    /// Whether `ev` can be applied after what was applied so far without
    /// changing the order (else the session must be replayed).
    pub fn accepts_in_order(&self, ev: &Event) -> bool {
        self.last_key.is_none_or(|k| ev.sort_key() > k)
    }

    pub fn first_t(&self) -> Option<Millis> {
        self.first_t
    }

    pub fn last_t(&self) -> Option<Millis> {
        self.last_t
    }

    /// The time of the explicit close, once the session saw `viewend`.
    pub fn closed_at(&self) -> Option<Millis> {
        self.closed_at
    }

    /// When the main-content playhead last moved (or first appeared).
    pub fn playhead_changed_at(&self) -> Option<Millis> {
        self.playhead_changed_at
    }

    /// Apply one event. The caller keeps (`t`, `order`) order; an event
    /// earlier than the last one applied is accounted as if at that time.
    pub fn apply(&mut self, ev: &Event) {
        let t = self.last_t.map_or(ev.t, |last| ev.t.max(last));
        if let Some(last) = self.last_t {
            if self.rules.accounting == Accounting::State {
                self.account_interval(last, t);
            }
        }
        self.first_t.get_or_insert(t);
        self.last_t = Some(t);
        self.last_key = Some(ev.sort_key());
        if ev.clock_skew_corrected {
            self.clock_skew_corrections += 1;
        }
        self.apply_qoe(&ev.qoe);
        if let Some(ph) = ev.playhead {
            if !matches!(ev.kind, EventKind::Progress { .. }) {
                self.observe_playhead(t, ph);
            }
        }
        self.transition(t, ev);
    }

    /// State mode: give the interval [from, to) to the state in force.
    fn account_interval(&mut self, from: Millis, to: Millis) {
        let dt = (to - from) as f64;
        if dt <= 0.0 {
            return;
        }
        match self.state {
            PlayerState::Playing => self.credit_playing(dt),
            PlayerState::Paused => self.paused_ms += dt,
            PlayerState::Buffering => self.rebuffer_ms += dt,
            PlayerState::Seeking => self.seek_ms += dt,
            // Time in `starting` is the startup time, taken from its two
            // ends; `init` and `ended` are not watching.
            PlayerState::Init | PlayerState::Starting | PlayerState::Ended => {}
        }
    }

    fn credit_playing(&mut self, ms: f64) {
        if self.in_break {
            self.ad_playing_ms += ms;
        } else {
            self.playing_ms += ms;
            if let Some(b) = self.bitrate_bps {
                self.bitrate_weighted += b as f64 * ms;
                self.bitrate_time_ms += ms;
            }
        }
    }

    fn apply_qoe(&mut self, qoe: &Qoe) {
        if let Some(b) = qoe.bitrate_bps {
            self.set_bitrate(b);
        }
        if let Some(d) = qoe.dropped_frames {
            self.dropped_frames = Some(self.dropped_frames.map_or(d, |x| x.max(d)));
        }
        if let Some(f) = qoe.total_frames {
            self.total_frames = Some(self.total_frames.map_or(f, |x| x.max(f)));
        }
        if let Some(s) = qoe.startup_time_ms {
            if s.is_finite() && s >= 0.0 {
                self.reported_startup_ms.get_or_insert(s);
            }
        }
    }

    fn set_bitrate(&mut self, bps: u64) {
        if let Some(old) = self.bitrate_bps {
            if old != bps {
                self.bitrate_changes += 1;
            }
        }
        self.bitrate_bps = Some(bps);
    }

    /// State mode: a playhead on main content. Played intervals come from two
    /// consecutive playheads around an interval spent playing, when the
    /// advance is plausible for the time elapsed.
    fn observe_playhead(&mut self, t: Millis, ph: f64) {
        if self.in_break || !ph.is_finite() || ph < 0.0 {
            return;
        }
        // Adobe stall rule: the playhead stays put for >= 3 consecutive
        // events while playing main content (counted once per run).
        if self.state == PlayerState::Playing && self.last_playhead == Some(ph) {
            self.unmoved_run += 1;
            if self.unmoved_run == STALL_RUN - 1 {
                self.stall_count += 1;
            }
        } else {
            self.unmoved_run = 0;
        }
        if let (Some(prev), Some(prev_t)) = (self.last_playhead, self.playhead_time) {
            let dw = (t - prev_t) as f64 / 1000.0;
            let dp = ph - prev;
            if self.state == PlayerState::Playing && dp > 0.0 && dp <= dw * self.rate.max(1.0) + 1.0
            {
                self.add_watched(prev, ph);
            }
        }
        self.note_playhead(t, ph);
    }

    fn note_playhead(&mut self, t: Millis, ph: f64) {
        if self.last_playhead != Some(ph) {
            self.playhead_changed_at = Some(t);
        }
        self.last_playhead = Some(ph);
        self.playhead_time = Some(t);
        self.max_playhead = Some(self.max_playhead.map_or(ph, |m| m.max(ph)));
    }

    fn add_watched(&mut self, from: f64, to: f64) {
        let (mut lo, mut hi) = (from.min(to), from.max(to));
        let mut merged = Vec::with_capacity(self.watched.len() + 1);
        for &(a, b) in &self.watched {
            if b < lo || a > hi {
                merged.push((a, b));
            } else {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        merged.push((lo, hi));
        merged.sort_by(|x, y| x.0.total_cmp(&y.0));
        self.watched = merged;
    }

    fn transition(&mut self, t: Millis, ev: &Event) {
        use PlayerState as S;
        match &ev.kind {
            EventKind::Viewinit | EventKind::Heartbeat | EventKind::Resize { .. } => {}
            EventKind::Custom { .. } => {}
            EventKind::Play => {
                self.play_requested_at.get_or_insert(t);
                if matches!(self.state, S::Init | S::Ended) {
                    self.state = S::Starting;
                }
            }
            EventKind::Playing => {
                self.end_reported_pause(t);
                self.first_frame_at.get_or_insert(t);
                if !self.in_break {
                    self.content_started = true;
                }
                self.failure_pending = false;
                self.state = S::Playing;
            }
            EventKind::Pause => {
                if self.state != S::Ended {
                    self.state = S::Paused;
                    if self.rules.reported_pauses {
                        self.pause_started.get_or_insert(t);
                    }
                }
            }
            EventKind::Seeking => {
                if self.first_frame_at.is_some() && self.state != S::Seeking {
                    self.seek_count += 1;
                    self.seek_from_paused = self.state == S::Paused;
                    self.state = S::Seeking;
                }
            }
            EventKind::Seeked => {
                if self.state == S::Seeking && self.seek_from_paused {
                    self.state = S::Paused;
                } else if self.state == S::Seeking && self.rules.seeked_resumes {
                    self.state = S::Playing;
                }
            }
            EventKind::Waiting => {
                // Before the first frame it is startup; during a seek it is seek time.
                if self.state == S::Playing {
                    self.rebuffer_count += 1;
                    self.state = S::Buffering;
                }
            }
            EventKind::Ratechange { rate } => {
                if rate.is_finite() && *rate > 0.0 {
                    self.rate = *rate;
                }
            }
            EventKind::Renditionchange { bitrate_bps, .. } => {
                if let Some(b) = bitrate_bps {
                    self.set_bitrate(*b);
                }
            }
            EventKind::Progress { seek, from, shown } => {
                if *shown {
                    self.first_frame_at.get_or_insert(t);
                    if !self.in_break {
                        self.content_started = true;
                    }
                    if matches!(self.state, S::Init | S::Starting) {
                        self.state = S::Playing;
                    }
                }
                self.progress(t, ev.playhead, *seek, *from)
            }
            EventKind::Error {
                code,
                message,
                severity,
                source,
            } => {
                let fatal = *severity == ErrorSeverity::Fatal;
                if self.errors.len() < MAX_ERRORS_KEPT {
                    self.errors.push(ErrorRecord {
                        t,
                        code: code.clone(),
                        message: message.clone(),
                        fatal: *severity != ErrorSeverity::Warning,
                        source: source.clone(),
                    });
                }
                match severity {
                    ErrorSeverity::Fatal => self.fatal = true,
                    ErrorSeverity::FatalUnlessResumed => self.failure_pending = true,
                    ErrorSeverity::Warning => {}
                }
                if fatal {
                    self.end_reported_pause(t);
                    self.state = S::Ended;
                }
            }
            EventKind::Ended => {
                self.completed = true;
                self.state = S::Ended;
            }
            EventKind::Viewend => {
                self.end_reported_pause(t);
                self.closed_at.get_or_insert(t);
            }
            EventKind::Adbreakstart => {
                // An ad break interrupts main content: an unmoving-playhead
                // run (Adobe stall) does not continue across it.
                self.unmoved_run = 0;
                if !self.in_break {
                    self.in_break = true;
                    self.ad_breaks += 1;
                }
            }
            EventKind::Adstart { .. } => {
                if self.in_break {
                    self.in_ad = true;
                    self.ads_started += 1;
                    self.ad_impressions += 1;
                } else {
                    self.ads_ignored += 1;
                }
            }
            EventKind::Adquartile { quartile } => {
                if self.in_ad {
                    match quartile {
                        1 => self.ad_quartiles.first += 1,
                        2 => self.ad_quartiles.mid += 1,
                        3 => self.ad_quartiles.third += 1,
                        _ => {}
                    }
                }
            }
            EventKind::Adcomplete => {
                if self.in_ad {
                    self.ads_completed += 1;
                    self.in_ad = false;
                }
            }
            EventKind::Adskip => {
                if self.in_ad {
                    self.ads_skipped += 1;
                    self.in_ad = false;
                }
            }
            EventKind::Adbreakend => {
                self.unmoved_run = 0;
                self.in_break = false;
                self.in_ad = false;
            }
        }
    }

    /// Progress mode: a position report (`spec/metrics.md`).
    fn progress(&mut self, t: Millis, position: Option<f64>, seek: bool, from: Option<f64>) {
        let Some(p) = position.filter(|p| p.is_finite() && *p >= 0.0) else {
            return;
        };
        let Accounting::Progress {
            report_interval_ms,
            player_decides_continuity,
        } = self.rules.accounting
        else {
            // A state-mode protocol sending positions: just a playhead.
            self.observe_playhead(t, p);
            return;
        };
        if self.rules.reported_pauses {
            self.reported_progress(t, p, seek, from, report_interval_ms);
        } else if let Some((t0, p0)) = self.last_report {
            let dw_ms = (t - t0) as f64;
            let dw = dw_ms / 1000.0;
            let dp = p - p0;
            if seek {
                self.seek_count += 1;
                if let Some(f) = from.filter(|f| *f > p0 && f.is_finite()) {
                    // Played up to `from` before seeking away (ping `ft`).
                    let credit = (f - p0).min(dw + 1.0);
                    if credit > 0.0 {
                        self.credit_playing(credit * 1000.0);
                        if !self.in_break {
                            self.add_watched(p0, p0 + credit);
                        }
                    }
                }
            } else if dw_ms > 3.0 * report_interval_ms as f64 {
                self.paused_ms += dw_ms;
            } else if player_decides_continuity {
                if dp > 0.0 {
                    let credit = dp.min(dw + 1.0);
                    self.credit_playing(credit * 1000.0);
                    if !self.in_break {
                        self.add_watched(p0, p0 + credit);
                    }
                }
            } else if dp > 0.0 && dp <= dw * self.rate.max(1.0) + 1.0 {
                self.credit_playing(dp * 1000.0);
                if !self.in_break {
                    self.add_watched(p0, p);
                }
            } else if dp != 0.0 {
                self.seek_count += 1;
            }
        }
        self.last_report = Some((t, p));
        if !self.in_break {
            self.note_playhead(t, p);
        }
    }

    /// A reported pause ends (`playing`, close, fatal error): its time is paused.
    fn end_reported_pause(&mut self, t: Millis) {
        if let Some(started) = self.pause_started.take() {
            let ms = (t - started).max(0) as f64;
            self.paused_ms += ms;
            self.gap_paused_ms += ms;
        }
    }

    /// Progress mode with reported pauses (`Rules::reported_pauses`, UAV): a
    /// position report at `t`. Paused time is the reported pauses, plus the
    /// part of a long gap the playhead did not advance; the advance rule and
    /// the seek credit see the gap's unpaused part only.
    fn reported_progress(
        &mut self,
        t: Millis,
        p: f64,
        seek: bool,
        from: Option<f64>,
        report_interval_ms: Millis,
    ) {
        let closed_ms = std::mem::take(&mut self.gap_paused_ms);
        let gap_ms = self.last_report.map_or(0.0, |(t0, _)| (t - t0) as f64);
        let mut open_ms = self
            .pause_started
            .map_or(0.0, |started| (t - started).max(0) as f64);
        if let Some((_, p0)) = self.last_report {
            if !seek && p > p0 && self.pause_started.is_some() {
                // The playhead moved during a pause: the resume was not
                // reported. Only what the playhead did not cover was paused.
                open_ms = open_ms.min((gap_ms - closed_ms - (p - p0) * 1000.0).max(0.0));
                self.pause_started = None;
                if self.state == PlayerState::Paused {
                    self.state = PlayerState::Playing;
                }
            }
        }
        self.paused_ms += open_ms;
        if self.pause_started.is_some() {
            self.pause_started = Some(t);
        }
        let Some((_, p0)) = self.last_report else {
            return;
        };
        let active_ms = (gap_ms - closed_ms - open_ms).max(0.0);
        let active = active_ms / 1000.0;
        let dp = p - p0;
        if seek {
            self.seek_count += 1;
            if let Some(f) = from.filter(|f| *f > p0 && f.is_finite()) {
                let credit = (f - p0).min(active + 1.0);
                if credit > 0.0 {
                    self.credit_playing(credit * 1000.0);
                    if !self.in_break {
                        self.add_watched(p0, p0 + credit);
                    }
                }
            }
            return;
        }
        let plausible = dp > 0.0 && dp <= active * self.rate.max(1.0) + 1.0;
        let played_ms = if plausible {
            (dp * 1000.0).min(active_ms)
        } else {
            0.0
        };
        let unplayed_ms = active_ms - played_ms;
        if unplayed_ms > 3.0 * report_interval_ms as f64 {
            self.paused_ms += unplayed_ms;
        }
        if plausible {
            self.credit_playing(dp * 1000.0);
            if !self.in_break {
                self.add_watched(p0, p);
            }
        } else if dp != 0.0 {
            self.seek_count += 1;
        }
    }

    /// The session's metrics, as of now. `closed_at` is the close time when
    /// the session is closed (explicitly or by timeout), else `None`.
    pub fn metrics(&self, meta: &SessionMeta, closed_at: Option<Millis>) -> SessionMetrics {
        let played = self.first_frame_at.is_some();
        let play_requested = self.play_requested_at.is_some();
        let startup_time_ms = self.reported_startup_ms.or_else(|| {
            match (self.play_requested_at, self.first_frame_at) {
                (Some(req), Some(ff)) if ff >= req && self.rules.measures_startup => {
                    Some((ff - req) as f64)
                }
                _ => None,
            }
        });
        let watch_time_ms = startup_time_ms.unwrap_or(0.0)
            + self.playing_ms
            + self.ad_playing_ms
            + self.rebuffer_ms
            + self.seek_ms;
        let rebuffer_percentage = ratio(self.rebuffer_ms, watch_time_ms);
        let rebuffer_frequency = ratio(self.rebuffer_count as f64, watch_time_ms / 60_000.0);
        let content_watched_s: f64 = self.watched.iter().map(|(a, b)| b - a).sum();
        let duration = meta
            .duration_s
            .filter(|d| d.is_finite() && *d > 0.0 && !meta.is_live());
        let completion = duration.map(|d| content_watched_s / d);
        let progress_markers = match (duration, self.max_playhead) {
            (Some(d), Some(max)) => PROGRESS_MARKERS
                .into_iter()
                .filter(|m| max >= f64::from(*m) / 100.0 * d)
                .collect(),
            _ => Vec::new(),
        };
        let completed = self.completed
            || (self.rules.completion_from_playhead
                && matches!((duration, self.max_playhead), (Some(d), Some(m)) if m >= 0.95 * d));
        let failed = self.fatal || self.failure_pending && closed_at.is_some();
        let exit_before_start = play_requested
            && !played
            && !failed
            && match (closed_at, self.play_requested_at) {
                (Some(end), Some(req)) => end - req >= EXIT_BEFORE_START_MIN_MS,
                _ => false,
            };
        let bitrate_avg_bps = if self.bitrate_time_ms > 0.0 {
            Some(self.bitrate_weighted / self.bitrate_time_ms)
        } else {
            self.bitrate_bps.map(|b| b as f64)
        };
        let startup_score = startup_time_ms.map(|ms| 100.0 * 8.0 / (8.0 + ms / 1000.0));
        let smoothness_score = played.then(|| {
            let by_count = 100.0 / (1.0 + (self.rebuffer_count as f64 / 2.0).powi(2)).sqrt();
            let by_share = 100.0 * (-10.0 * rebuffer_percentage).exp();
            (by_count + by_share) / 2.0
        });
        let playback_success_score = if failed {
            Some(0.0)
        } else if exit_before_start {
            Some(50.0)
        } else if played {
            Some(100.0)
        } else {
            None
        };
        let viewer_experience_score = playback_success_score.map(|success| {
            let parts: Vec<f64> = [startup_score, smoothness_score]
                .into_iter()
                .flatten()
                .collect();
            if parts.is_empty() {
                success
            } else {
                success * (parts.iter().sum::<f64>() / parts.len() as f64) / 100.0
            }
        });
        SessionMetrics {
            play_requested,
            played,
            startup_time_ms,
            playing_time_ms: self.playing_ms,
            ad_playing_time_ms: self.ad_playing_ms,
            paused_time_ms: self.paused_ms,
            rebuffer_count: self.rebuffer_count,
            rebuffer_time_ms: self.rebuffer_ms,
            seek_count: self.seek_count,
            seek_time_ms: self.seek_ms,
            watch_time_ms,
            rebuffer_percentage,
            rebuffer_frequency,
            max_playhead_s: self.max_playhead,
            content_watched_s,
            completion,
            progress_markers,
            completed,
            failed,
            exit_before_start,
            bitrate_avg_bps,
            bitrate_changes: self.bitrate_changes,
            dropped_frames: self.dropped_frames,
            total_frames: self.total_frames,
            errors: self.errors.clone(),
            ad_breaks: self.ad_breaks,
            ads_started: self.ads_started,
            ads_completed: self.ads_completed,
            ads_skipped: self.ads_skipped,
            ads_ignored: self.ads_ignored,
            ad_impressions: self.ad_impressions,
            ad_quartiles: self.ad_quartiles,
            clock_skew_corrections: self.clock_skew_corrections,
            content_started: self.content_started,
            media_time_spent_ms: self.playing_ms + self.ad_playing_ms,
            stall_count: self.stall_count,
            resumed: meta.dimensions.get("resumed").is_some_and(|v| v == "true"),
            startup_score,
            smoothness_score,
            playback_success_score,
            viewer_experience_score,
        }
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_model::Protocol;

    const T0: Millis = 1_700_000_000_000;

    fn report(at_s: f64, position: f64) -> Event {
        let t = T0 + (at_s * 1000.0) as Millis;
        Event::new(
            t,
            t,
            EventKind::Progress {
                seek: false,
                from: None,
                shown: false,
            },
        )
        .with_playhead(position)
    }

    fn fold(protocol: Protocol, events: &[Event]) -> SessionMetrics {
        let mut p = Playback::new(Rules::for_protocol(protocol));
        for e in events {
            p.apply(e);
        }
        let meta = SessionMeta {
            duration_s: Some(100.0),
            ..SessionMeta::default()
        };
        p.metrics(&meta, None)
    }

    #[test]
    fn progress_mode_counts_plausible_advances_as_playing() {
        // Pixel checks every 5 s of position: 0, 5, 10, 15 at 0, 5, 10.5, 15.5 s.
        // Each Δp = 5 ≤ Δw × 1 + 1, so 3 × 5 s = 15 s playing, [0, 15] watched.
        let m = fold(
            Protocol::Pixel,
            &[
                report(0.0, 0.0),
                report(5.0, 5.0),
                report(10.5, 10.0),
                report(15.5, 15.0),
            ],
        );
        assert_eq!(m.playing_time_ms, 15_000.0);
        assert_eq!(m.content_watched_s, 15.0);
        assert_eq!(m.seek_count, 0);
        assert_eq!(m.max_playhead_s, Some(15.0));
        assert_eq!(m.progress_markers, vec![10]);
    }

    #[test]
    fn progress_mode_jump_is_a_seek_and_silence_is_a_pause() {
        // 0→5 in 5 s: playing 5 s. 5→60 in 5 s: Δp 55 > 5 + 1: a seek, no
        // playing. 60→65 after 40 s of silence (> 3 × 5 s): paused 40 s.
        // 65→55 in 5 s: backwards: a seek.
        let m = fold(
            Protocol::Pixel,
            &[
                report(0.0, 0.0),
                report(5.0, 5.0),
                report(10.0, 60.0),
                report(50.0, 65.0),
                report(55.0, 55.0),
            ],
        );
        assert_eq!(m.playing_time_ms, 5_000.0);
        assert_eq!(m.seek_count, 2);
        assert_eq!(m.paused_time_ms, 40_000.0);
        assert_eq!(m.content_watched_s, 5.0);
        // The seek to 60 crossed 10, 25 and 50 % of 100 s (Adobe rule).
        assert_eq!(m.progress_markers, vec![10, 25, 50]);
    }

    #[test]
    fn ping_continuity_is_the_players_word_with_capped_credit() {
        // Ping: 0→30 in 10 s is continuous (no ev=seek) but credited at most
        // Δw + 1 = 11 s; 30→40 in 10 s: 10 s. A report marked seek: no credit.
        let seek = {
            let t = T0 + 30_000;
            Event::new(
                t,
                t,
                EventKind::Progress {
                    seek: true,
                    from: Some(40.0),
                    shown: false,
                },
            )
            .with_playhead(90.0)
        };
        let m = fold(
            Protocol::Ping,
            &[
                report(0.0, 0.0),
                report(10.0, 30.0),
                report(20.0, 40.0),
                seek,
            ],
        );
        assert_eq!(m.playing_time_ms, 21_000.0);
        assert_eq!(m.seek_count, 1);
    }

    #[test]
    fn completion_from_playhead_for_pixel() {
        // Pixel has no end event: 95 % of the duration reached means completed.
        let m = fold(Protocol::Pixel, &[report(0.0, 90.0), report(5.0, 95.0)]);
        assert!(m.completed);
        let m = fold(Protocol::Native, &[report(0.0, 90.0), report(5.0, 95.0)]);
        assert!(!m.completed, "native completes only on `ended`");
    }

    #[test]
    fn adobe_stall_is_three_events_at_one_playhead_while_playing() {
        // Adobe pings every 10 s while playing: playheads 0, 10, 10, 10, 10, 20.
        // The run 10, 10, 10 (3 consecutive events at one playhead) is one
        // stall; the fourth 10 continues the same run; 20 ends it.
        let ev = |i: i64, kind: EventKind, ph: f64| {
            let t = T0 + i * 10_000;
            Event::new(t, t, kind).with_playhead(ph)
        };
        let events = [
            ev(0, EventKind::Play, 0.0),
            ev(0, EventKind::Playing, 0.0),
            ev(1, EventKind::Heartbeat, 10.0),
            ev(2, EventKind::Heartbeat, 10.0),
            ev(3, EventKind::Heartbeat, 10.0),
            ev(4, EventKind::Heartbeat, 10.0),
            ev(5, EventKind::Heartbeat, 20.0),
        ];
        let m = fold(Protocol::MediaCollection, &events);
        assert_eq!(m.stall_count, 1);
        assert!(m.content_started);
        // Playing the whole 50 s, no ads: media time spent = content time.
        assert_eq!(m.media_time_spent_ms, 50_000.0);
        // Paused at one playhead is not a stall.
        let paused = [
            ev(0, EventKind::Playing, 5.0),
            ev(1, EventKind::Pause, 5.0),
            ev(2, EventKind::Heartbeat, 5.0),
            ev(3, EventKind::Heartbeat, 5.0),
            ev(4, EventKind::Heartbeat, 5.0),
        ];
        assert_eq!(fold(Protocol::MediaCollection, &paused).stall_count, 0);
    }

    /// A UAV session's fold (issue 6), events at seconds after `T0`.
    fn fold_uav(rules: Rules, events: &[Event]) -> SessionMetrics {
        let mut p = Playback::new(rules);
        for e in events {
            p.apply(e);
        }
        p.metrics(&SessionMeta::default(), None)
    }

    fn at(at_s: f64, kind: EventKind) -> Event {
        let t = T0 + (at_s * 1000.0) as Millis;
        Event::new(t, t, kind)
    }

    fn skip_to(at_s: f64, position: f64) -> Event {
        at(
            at_s,
            EventKind::Progress {
                seek: true,
                from: None,
                shown: false,
            },
        )
        .with_playhead(position)
    }

    #[test]
    fn uav_300_s_cadence_is_playing_not_paused() {
        // Issue 6: a release reporting every 300 s. Start at 0; reports at
        // 300, 600, 900 s, each 300 s further. Gap 300 s > 3 x 60 s, but the
        // playhead covered all of it: 3 x 300 s playing, nothing paused.
        let events = [
            at(0.0, EventKind::Play),
            report(0.0, 0.0),
            report(300.0, 300.0),
            report(600.0, 600.0),
            report(900.0, 900.0),
        ];
        let uav = Rules::for_protocol(Protocol::UserActivity);
        let m = fold_uav(uav, &events);
        assert_eq!(m.playing_time_ms, 900_000.0);
        assert_eq!(m.paused_time_ms, 0.0);
        assert_eq!(m.seek_count, 0);
        assert_eq!(m.content_watched_s, 900.0);
        // The plain progress rule (pixel's) would give the whole of every
        // 300-s gap to paused and none to playing: what this rule fixes.
        let plain = Rules {
            reported_pauses: false,
            ..uav
        };
        let m = fold_uav(plain, &events);
        assert_eq!(m.playing_time_ms, 0.0);
        assert_eq!(m.paused_time_ms, 900_000.0);
    }

    #[test]
    fn uav_60_s_cadence_silence_is_paused_for_what_did_not_play() {
        // Reports every 60 s: 0 @ 0, 60 @ 60. Then 300 s of silence with no
        // advance (60 @ 360): 300 s > 180 s unplayed: paused 300 s. Then
        // 300 s in which the playhead moved 60 s (120 @ 660): played 60 s,
        // 240 s unplayed > 180 s: paused 240 s. Then 150 s moving 30 s
        // (150 @ 810): played 30 s; 120 s unplayed is not over 180 s.
        let m = fold_uav(
            Rules::for_protocol(Protocol::UserActivity),
            &[
                report(0.0, 0.0),
                report(60.0, 60.0),
                report(360.0, 60.0),
                report(660.0, 120.0),
                report(810.0, 150.0),
            ],
        );
        assert_eq!(m.playing_time_ms, 150_000.0);
        assert_eq!(m.paused_time_ms, 540_000.0);
        assert_eq!(m.seek_count, 0);
    }

    #[test]
    fn uav_reported_pause_and_resume_are_paused_time() {
        // 0 @ 0, 60 @ 60, pause reported at 130 s at position 130, resume at
        // 190 s, 180 @ 240. Playing: 60 + 70 (60 -> 130) + 50 (130 -> 180 in
        // the 50 unpaused seconds of a 110-s gap) = 180 s; paused 190 - 130 = 60 s.
        let m = fold_uav(
            Rules::for_protocol(Protocol::UserActivity),
            &[
                report(0.0, 0.0),
                report(60.0, 60.0),
                report(130.0, 130.0),
                at(130.0, EventKind::Pause),
                at(190.0, EventKind::Playing),
                report(240.0, 180.0),
            ],
        );
        assert_eq!(m.playing_time_ms, 180_000.0);
        assert_eq!(m.paused_time_ms, 60_000.0);
        assert_eq!(m.seek_count, 0);
        // A resume that never arrived: paused at 60 s (position 60), then
        // 120 @ 180. The playhead moved 60 s of the 120-s gap, so only the
        // other 60 s can have been paused.
        let m = fold_uav(
            Rules::for_protocol(Protocol::UserActivity),
            &[
                report(0.0, 0.0),
                report(60.0, 60.0),
                at(60.0, EventKind::Pause),
                report(180.0, 120.0),
            ],
        );
        assert_eq!(m.playing_time_ms, 120_000.0);
        assert_eq!(m.paused_time_ms, 60_000.0);
        // Stopped while paused: the pause lasts until the stop.
        let mut p = Playback::new(Rules::for_protocol(Protocol::UserActivity));
        for e in [
            report(0.0, 0.0),
            report(60.0, 60.0),
            at(60.0, EventKind::Pause),
            at(100.0, EventKind::Viewend),
        ] {
            p.apply(&e);
        }
        let m = p.metrics(&SessionMeta::default(), p.closed_at());
        assert_eq!(m.paused_time_ms, 40_000.0);
        assert_eq!(m.playing_time_ms, 60_000.0);
    }

    #[test]
    fn uav_skip_is_a_seek_without_playing_time_for_the_jump() {
        // 0 @ 0, 60 @ 60, skip ahead at 90 s to 600, 660 @ 150: a seek (the
        // 30 s before the skip are not known to have played), then 60 s.
        let m = fold_uav(
            Rules::for_protocol(Protocol::UserActivity),
            &[
                report(0.0, 0.0),
                report(60.0, 60.0),
                skip_to(90.0, 600.0),
                report(150.0, 660.0),
            ],
        );
        assert_eq!(m.seek_count, 1);
        assert_eq!(m.playing_time_ms, 120_000.0);
        assert_eq!(m.content_watched_s, 120.0);
        assert_eq!(m.max_playhead_s, Some(660.0));
    }
}
