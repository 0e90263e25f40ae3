//! The ping protocol's ad timeline (`spec/protocols.md` §3): where breaks,
//! ads and quartiles sit on the **player timeline** (ads stitched in), the
//! `next_time` rule, which boundaries a ping crosses and which of them fire
//! their tracking URLs, and the canonical events a ping means for analytics.
//!
//! Pure: no IO, no clock. The caller keeps a [`Cursor`] per session (last
//! position, where the current continuous run began, what has fired) and
//! persists it.
//!
//! Rules (our reading of the spec, where the vendor publishes none):
//! - A boundary is crossed by continuous play when `prev < b ≤ pt`; a run
//!   that starts at `pt` (`ev=start`, or the landing of a seek) also reaches
//!   the break and ad starts exactly at `pt`.
//! - A seek (`ev=seek`) plays continuously from the previous position to
//!   `ft`, then jumps to `pt`: nothing between `ft` and `pt` fires.
//! - Quartiles and the end of an ad fire only when its start was reached in
//!   the same continuous run (an ad entered mid-way fires nothing); a
//!   break's end fires only when its start was reached in the same run.
//! - Each boundary fires at most once per session (the cursor's `fired`).
//! - A ping that goes backwards without `ev=seek` is a seek (no `ft`).

use playhead_model::ads::{Asset, Channel, UNKNOWN_BREAK_REQUEST_S};
use playhead_model::{Event, EventKind, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// When nothing else is pending, the player pings again after this long.
pub const IDLE_PING_S: f64 = 60.0;
/// Inside a live break whose end is not known yet, ping at least this often
/// so `currentBreakEnd` reaches the player soon after it is known.
pub const OPEN_BREAK_PING_S: f64 = 10.0;

/// What happens at a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    BreakStart,
    /// Ad `n` of the break starts (impressions + `start` tracking).
    AdStart(usize),
    /// Ad `n` reaches quartile 1, 2 or 3.
    Quartile(usize, u8),
    /// Ad `n` ends (`complete`).
    AdEnd(usize),
    BreakEnd,
}

/// A point of the player timeline where something happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    /// Player time, seconds.
    pub pt: f64,
    /// Index of the break in [`Timeline::breaks`].
    pub brk: usize,
    pub mark: Mark,
    /// Stable name within the session, e.g. `b1.a0.q2` (fired-set and
    /// beacon keys).
    pub id: String,
}

/// A break placed on the player timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedBreak {
    /// `b<index>` for VOD, `b-<id>` for live.
    pub key: String,
    /// Its index in the configured list (`Asset::breaks`, `Channel::breaks`).
    pub source: usize,
    /// Player time of its start, seconds.
    pub start: f64,
    /// Player time of its end; `None` while unknown (live).
    pub end: Option<f64>,
    /// Content position the break sits at.
    pub content_at: f64,
    /// (start, end) of each ad, player time.
    pub ads: Vec<(f64, f64)>,
}

impl PlacedBreak {
    fn contains(&self, pt: f64) -> bool {
        pt >= self.start && self.end.is_none_or(|e| pt < e)
    }
}

/// Breaks and boundaries on the player timeline of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub breaks: Vec<PlacedBreak>,
    /// Sorted by `pt`, ties in playing order.
    pub boundaries: Vec<Boundary>,
    /// VOD: player time at which everything (content and breaks) has played.
    pub end: Option<f64>,
}

impl Timeline {
    /// A VOD asset: break `k` at content time `c` starts at player time
    /// `c` + the durations of the breaks before it.
    pub fn vod(asset: &Asset) -> Timeline {
        let mut order: Vec<usize> = (0..asset.breaks.len()).collect();
        order.sort_by(|a, b| {
            asset.breaks[*a]
                .time_offset
                .total_cmp(&asset.breaks[*b].time_offset)
        });
        let mut tl = Timeline {
            breaks: Vec::new(),
            boundaries: Vec::new(),
            end: None,
        };
        let mut stitched = 0.0;
        for k in order {
            let b = &asset.breaks[k];
            let content_at = b.time_offset.clamp(0.0, asset.duration_s);
            let start = content_at + stitched;
            let durations: Vec<f64> = b.ads.iter().map(|a| a.duration).collect();
            let length: f64 = durations.iter().sum();
            tl.place(
                format!("b{k}"),
                k,
                start,
                Some(length),
                content_at,
                &durations,
            );
            stitched += length;
        }
        tl.end = Some(asset.duration_s + stitched);
        tl
    }

    /// A live channel, for a session whose player time 0 was at wall time
    /// `origin_ms` (its `ev=start` ping). Breaks that ended before the
    /// origin are left out. A break of unknown length holds the ads that fit
    /// in the default 240-s request.
    pub fn live(channel: &Channel, origin_ms: Millis) -> Timeline {
        let mut tl = Timeline {
            breaks: Vec::new(),
            boundaries: Vec::new(),
            end: None,
        };
        let mut plan: Vec<_> = channel.breaks.iter().enumerate().collect();
        plan.sort_by_key(|(_, b)| b.start_ms);
        for (source, b) in plan {
            let start = (b.start_ms - origin_ms) as f64 / 1000.0;
            let limit = b.duration.unwrap_or(UNKNOWN_BREAK_REQUEST_S);
            if start + limit <= 0.0 {
                continue;
            }
            let mut durations = Vec::new();
            let mut used = 0.0;
            for ad in &b.ads {
                if used + ad.duration > limit + 1e-9 {
                    break;
                }
                used += ad.duration;
                durations.push(ad.duration);
            }
            tl.place(
                format!("b-{}", b.id),
                source,
                start,
                b.duration,
                start,
                &durations,
            );
        }
        tl
    }

    fn place(
        &mut self,
        key: String,
        source: usize,
        start: f64,
        length: Option<f64>,
        content_at: f64,
        ads: &[f64],
    ) {
        let brk = self.breaks.len();
        let mut push = |pt: f64, mark: Mark, id: String| {
            self.boundaries.push(Boundary { pt, brk, mark, id });
        };
        push(start, Mark::BreakStart, format!("{key}.start"));
        let mut at = start;
        let mut spans = Vec::with_capacity(ads.len());
        for (n, d) in ads.iter().enumerate() {
            push(at, Mark::AdStart(n), format!("{key}.a{n}.start"));
            for q in 1..=3u8 {
                let pt = at + d * f64::from(q) / 4.0;
                push(pt, Mark::Quartile(n, q), format!("{key}.a{n}.q{q}"));
            }
            push(at + d, Mark::AdEnd(n), format!("{key}.a{n}.end"));
            spans.push((at, at + d));
            at += d;
        }
        let end = length.map(|l| start + l);
        if let Some(end) = end {
            push(end, Mark::BreakEnd, format!("{key}.end"));
        }
        self.breaks.push(PlacedBreak {
            key,
            source,
            start,
            end,
            content_at,
            ads: spans,
        });
        // Stable: ties keep playing order (an ad's end before the next's start).
        self.boundaries.sort_by(|a, b| a.pt.total_cmp(&b.pt));
    }

    /// The break `pt` is inside of, if any.
    pub fn break_at(&self, pt: f64) -> Option<usize> {
        self.breaks.iter().position(|b| b.contains(pt))
    }

    /// Content position of player time `pt` (live: `pt` itself).
    pub fn content_position(&self, pt: f64) -> f64 {
        if self.end.is_none() {
            return pt;
        }
        let mut stitched = 0.0;
        for b in &self.breaks {
            let end = b.end.unwrap_or(b.start);
            if pt >= end {
                stitched += end - b.start;
            } else if pt >= b.start {
                return b.content_at;
            }
        }
        (pt - stitched).max(0.0)
    }

    /// The position analytics see: the content position outside breaks;
    /// inside a break, its content position plus the time into the break
    /// (so progress inside a break credits ad time, see [`ping_events`]).
    pub fn analytics_position(&self, pt: f64) -> f64 {
        match self.break_at(pt) {
            Some(k) if self.end.is_some() => {
                self.breaks[k].content_at + (pt - self.breaks[k].start)
            }
            _ => self.content_position(pt),
        }
    }

    /// `next_time` (`spec/protocols.md` §3): the first boundary strictly
    /// after `pt`; else `min(pt + 60, end)` while content remains; `-1.0`
    /// at or after the end (VOD). Live: inside a break of unknown end, at
    /// most 10 s ahead.
    pub fn next_time(&self, pt: f64) -> f64 {
        if let Some(end) = self.end {
            if pt >= end {
                return -1.0;
            }
        }
        let next = self
            .boundaries
            .iter()
            .map(|b| b.pt)
            .find(|b| *b > pt)
            .unwrap_or(f64::INFINITY);
        let idle = match self.end {
            Some(end) => (pt + IDLE_PING_S).min(end),
            None => {
                let open = self
                    .break_at(pt)
                    .is_some_and(|k| self.breaks[k].end.is_none());
                pt + if open { OPEN_BREAK_PING_S } else { IDLE_PING_S }
            }
        };
        next.min(idle)
    }
}

/// What a session remembers between pings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Player time of the last ping.
    pub last_pt: Option<f64>,
    /// Server time of the last ping.
    pub last_ms: Option<Millis>,
    /// Where the current continuous run began (`ev=start` or a seek's landing).
    pub run_start: f64,
    /// Boundary ids that have fired (at most once per session).
    pub fired: BTreeSet<String>,
    /// Live: wall time of player time 0 (the `ev=start` ping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_ms: Option<Millis>,
    /// The end of the content was reached.
    #[serde(default)]
    pub ended: bool,
}

/// One ping, as decoded (`spec/protocols.md` §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ping {
    pub pt: f64,
    pub ev: Option<PingEvent>,
    /// The position before a seek.
    pub ft: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingEvent {
    Start,
    Seek,
}

/// A boundary a ping reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// Index into [`Timeline::boundaries`].
    pub boundary: usize,
    /// It fires now: eligible and not fired before in this session.
    pub fires: bool,
    /// Reached at the landing of a jump (start or seek), not by play.
    pub at_landing: bool,
}

/// What one ping did to the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    /// Player time continuous play started from (`None`: a fresh start).
    pub from: Option<f64>,
    /// Where continuous play ended: `pt`, or `ft` for a seek.
    pub played_to: f64,
    /// The position jumped to, when the ping is a start or a seek.
    pub jump_to: Option<f64>,
    /// In playing order: the continuous part, then the landing.
    pub crossings: Vec<Crossing>,
    /// This ping reached the end of a VOD timeline (first time).
    pub reached_end: bool,
}

/// Apply one ping to the cursor: which boundaries it crosses and which fire.
pub fn advance(tl: &Timeline, cursor: &mut Cursor, ping: Ping) -> Advance {
    let pt = ping.pt;
    let (from, played_to, jump_to) = match (cursor.last_pt, ping.ev) {
        (None, _) | (Some(_), Some(PingEvent::Start)) => (None, pt, Some(pt)),
        (Some(last), Some(PingEvent::Seek)) => {
            let to = ping.ft.filter(|f| *f >= last).unwrap_or(last);
            (Some(last), to, Some(pt))
        }
        (Some(last), None) if pt < last => (Some(last), last, Some(pt)),
        (Some(last), None) => (Some(last), pt, None),
    };
    let mut crossings = Vec::new();
    if let Some(from) = from {
        for (i, b) in tl.boundaries.iter().enumerate() {
            if b.pt > from && b.pt <= played_to {
                let fires = eligible(tl, b, cursor.run_start) && cursor.fired.insert(b.id.clone());
                crossings.push(Crossing {
                    boundary: i,
                    fires,
                    at_landing: false,
                });
            }
        }
    }
    if let Some(to) = jump_to {
        cursor.run_start = to;
        for (i, b) in tl.boundaries.iter().enumerate() {
            let starts = matches!(b.mark, Mark::BreakStart | Mark::AdStart(_));
            if starts && b.pt == to {
                let fires = cursor.fired.insert(b.id.clone());
                crossings.push(Crossing {
                    boundary: i,
                    fires,
                    at_landing: true,
                });
            }
        }
    }
    cursor.last_pt = Some(pt);
    let at_end = tl.end.is_some_and(|end| played_to.max(pt) >= end);
    let reached_end = at_end && !cursor.ended;
    cursor.ended |= at_end;
    Advance {
        from,
        played_to,
        jump_to,
        crossings,
        reached_end,
    }
}

/// Quartiles and ends need their start reached in the same run.
fn eligible(tl: &Timeline, b: &Boundary, run_start: f64) -> bool {
    let brk = &tl.breaks[b.brk];
    match b.mark {
        Mark::BreakStart | Mark::AdStart(_) => true,
        Mark::Quartile(n, _) | Mark::AdEnd(n) => brk.ads[n].0 >= run_start,
        Mark::BreakEnd => brk.start >= run_start,
    }
}

/// The canonical events of one ping, in order, for progress-mode analytics
/// (`Rules` for `Protocol::Ping`). `now` is the receive time; boundaries
/// crossed between the previous ping and this one get times interpolated
/// between the two. Ad events (`adstart`, `adquartile`, `adcomplete`) come
/// only for boundaries that fire, so analytics count what was tracked;
/// break entries and exits always come, so ad time is accounted as ads.
pub fn ping_events(
    tl: &Timeline,
    cursor_before: &Cursor,
    adv: &Advance,
    now: Millis,
    ads: &[Vec<AdInfo>],
) -> Vec<Event> {
    let mut out = Vec::new();
    let t_prev = cursor_before.last_ms.unwrap_or(now).min(now);
    let span = adv.from.map(|f| adv.played_to - f).unwrap_or(0.0);
    let time_at = |x: f64| -> Millis {
        match adv.from {
            Some(f) if span > 0.0 => {
                let share = ((x - f) / span).clamp(0.0, 1.0);
                t_prev + ((now - t_prev) as f64 * share).round() as Millis
            }
            _ => now,
        }
    };
    let progress = |t: Millis, pos: f64, seek: bool, shown: bool| {
        Event::new(
            t,
            now,
            EventKind::Progress {
                seek,
                from: None,
                shown,
            },
        )
        .with_playhead(pos)
    };
    let first = cursor_before.last_pt.is_none();
    if first {
        out.push(
            Event::new(now, now, EventKind::Play)
                .with_playhead(tl.analytics_position(adv.played_to)),
        );
    }
    let mut in_break = adv.from.and_then(|f| tl.break_at(f));
    let crossing_events = |out: &mut Vec<Event>, c: &Crossing, in_break: &mut Option<usize>| {
        let b = &tl.boundaries[c.boundary];
        let t = if c.at_landing { now } else { time_at(b.pt) };
        let brk = &tl.breaks[b.brk];
        match b.mark {
            Mark::BreakStart if *in_break != Some(b.brk) => {
                out.push(progress(t, brk.content_at, false, false));
                out.push(Event::new(t, now, EventKind::Adbreakstart).with_playhead(brk.content_at));
                *in_break = Some(b.brk);
            }
            Mark::AdStart(n) if c.fires => {
                let info = ads.get(b.brk).and_then(|a| a.get(n));
                out.push(
                    Event::new(
                        t,
                        now,
                        EventKind::Adstart {
                            ad_id: info.map(|i| i.creative.clone()),
                            duration_s: info.map(|i| i.duration),
                        },
                    )
                    .with_playhead(brk.content_at),
                );
            }
            Mark::Quartile(_, q) if c.fires => {
                out.push(
                    Event::new(t, now, EventKind::Adquartile { quartile: q })
                        .with_playhead(brk.content_at),
                );
            }
            Mark::AdEnd(_) if c.fires => {
                out.push(Event::new(t, now, EventKind::Adcomplete).with_playhead(brk.content_at));
            }
            Mark::BreakEnd if *in_break == Some(b.brk) => {
                let length = brk.end.unwrap_or(brk.start) - brk.start;
                out.push(progress(t, brk.content_at + length, false, false));
                let after = tl.content_position(brk.start + length);
                out.push(Event::new(t, now, EventKind::Adbreakend).with_playhead(after));
                out.push(progress(t, after, false, false));
                *in_break = None;
            }
            _ => {}
        }
    };
    for c in adv.crossings.iter().filter(|c| !c.at_landing) {
        crossing_events(&mut out, c, &mut in_break);
    }
    match adv.jump_to {
        Some(to) => {
            if adv.from.is_some() && adv.played_to > adv.from.unwrap_or(0.0) {
                out.push(progress(
                    now,
                    tl.analytics_position(adv.played_to),
                    false,
                    false,
                ));
            }
            let landing = tl.break_at(to).filter(|k| tl.breaks[*k].start < to);
            if in_break.is_some() && in_break != landing {
                out.push(
                    Event::new(now, now, EventKind::Adbreakend)
                        .with_playhead(tl.content_position(to)),
                );
                in_break = None;
            }
            if let Some(k) = landing {
                if in_break != Some(k) {
                    out.push(
                        Event::new(now, now, EventKind::Adbreakstart)
                            .with_playhead(tl.breaks[k].content_at),
                    );
                    in_break = Some(k);
                }
            }
            out.push(progress(now, tl.analytics_position(to), !first, first));
            for c in adv.crossings.iter().filter(|c| c.at_landing) {
                crossing_events(&mut out, c, &mut in_break);
            }
        }
        None => out.push(progress(
            now,
            tl.analytics_position(adv.played_to),
            false,
            false,
        )),
    }
    if adv.reached_end {
        let end = tl.content_position(tl.end.unwrap_or(0.0));
        out.push(Event::new(now, now, EventKind::Ended).with_playhead(end));
        out.push(Event::new(now, now, EventKind::Viewend).with_playhead(end));
    }
    out
}

/// What analytics keep of an ad (from the schedule).
#[derive(Debug, Clone, PartialEq)]
pub struct AdInfo {
    pub creative: String,
    pub duration: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_model::ads::{Ad, AdBreak, AdEvents, BreakEvents, BreakPosition, LiveBreak};

    fn ad(creative: &str, duration: f64) -> Ad {
        Ad {
            creative: creative.into(),
            duration,
            width: None,
            height: None,
            events: AdEvents::default(),
            fw_parameters: None,
        }
    }

    /// 60 s of content; a 10-s preroll; at content 30 s a midroll of two 15-s ads.
    fn asset() -> Asset {
        Asset {
            id: "a".into(),
            property: "p".into(),
            duration_s: 60.0,
            play_url: "http://x/a.m3u8".into(),
            breaks: vec![
                AdBreak {
                    position: BreakPosition::Midroll,
                    time_offset: 30.0,
                    events: BreakEvents::default(),
                    ads: vec![ad("m1", 15.0), ad("m2", 15.0)],
                },
                AdBreak {
                    position: BreakPosition::Preroll,
                    time_offset: 0.0,
                    events: BreakEvents::default(),
                    ads: vec![ad("pre", 10.0)],
                },
            ],
        }
    }

    fn ping(pt: f64) -> Ping {
        Ping {
            pt,
            ev: None,
            ft: None,
        }
    }

    fn fired(tl: &Timeline, adv: &Advance) -> Vec<String> {
        adv.crossings
            .iter()
            .filter(|c| c.fires)
            .map(|c| tl.boundaries[c.boundary].id.clone())
            .collect()
    }

    #[test]
    fn vod_boundaries_are_on_the_player_timeline() {
        let tl = Timeline::vod(&asset());
        // Breaks keep their index in the schedule (b1 is the preroll).
        assert_eq!(tl.breaks[0].key, "b1");
        assert_eq!((tl.breaks[0].start, tl.breaks[0].end), (0.0, Some(10.0)));
        assert_eq!((tl.breaks[1].start, tl.breaks[1].end), (40.0, Some(70.0)));
        assert_eq!(tl.breaks[1].ads, vec![(40.0, 55.0), (55.0, 70.0)]);
        assert_eq!(tl.end, Some(100.0));
        assert_eq!(tl.content_position(5.0), 0.0);
        assert_eq!(tl.content_position(25.0), 15.0);
        assert_eq!(tl.content_position(50.0), 30.0);
        assert_eq!(tl.content_position(85.0), 45.0);
        assert_eq!(tl.analytics_position(50.0), 40.0);
    }

    /// Hand-computed: preroll quartiles at 2.5/5/7.5, its end (and the
    /// break's) at 10; midroll at 10 + 30 = 40, ad 1 quartiles 43.75/47.5/
    /// 51.25, ad 2 from 55 (58.75/62.5/66.25), break end 70; content ends
    /// at 60 + 10 + 30 = 100.
    #[test]
    fn next_time_walks_every_boundary_then_the_end() {
        let tl = Timeline::vod(&asset());
        let mut pt = 0.0;
        let mut seen = vec![pt];
        while pt >= 0.0 {
            pt = tl.next_time(pt);
            seen.push(pt);
        }
        assert_eq!(
            seen,
            vec![
                0.0, 2.5, 5.0, 7.5, 10.0, 40.0, 43.75, 47.5, 51.25, 55.0, 58.75, 62.5, 66.25, 70.0,
                100.0, -1.0
            ]
        );
        // Nothing pending for a long stretch: 60 s at most.
        let long = Asset {
            duration_s: 600.0,
            breaks: vec![],
            ..asset()
        };
        let tl = Timeline::vod(&long);
        assert_eq!(tl.next_time(0.0), 60.0);
        assert_eq!(tl.next_time(570.0), 600.0);
        assert_eq!(tl.next_time(600.0), -1.0);
    }

    #[test]
    fn straight_play_fires_everything_once_in_order() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        let mut all = Vec::new();
        let start = Ping {
            pt: 0.0,
            ev: Some(PingEvent::Start),
            ft: None,
        };
        all.extend(fired(&tl, &advance(&tl, &mut cur, start)));
        let mut pt = 0.0;
        while pt >= 0.0 {
            pt = tl.next_time(pt);
            if pt >= 0.0 {
                all.extend(fired(&tl, &advance(&tl, &mut cur, ping(pt))));
            }
        }
        let want: Vec<&str> = vec![
            "b1.start",
            "b1.a0.start",
            "b1.a0.q1",
            "b1.a0.q2",
            "b1.a0.q3",
            "b1.a0.end",
            "b1.end",
            "b0.start",
            "b0.a0.start",
            "b0.a0.q1",
            "b0.a0.q2",
            "b0.a0.q3",
            "b0.a0.end",
            "b0.a1.start",
            "b0.a1.q1",
            "b0.a1.q2",
            "b0.a1.q3",
            "b0.a1.end",
            "b0.end",
        ];
        assert_eq!(all, want);
        // The same ping again (a retry) fires nothing.
        assert!(fired(&tl, &advance(&tl, &mut cur, ping(100.0))).is_empty());
    }

    #[test]
    fn one_long_ping_crosses_every_boundary_between() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        advance(
            &tl,
            &mut cur,
            Ping {
                pt: 0.0,
                ev: Some(PingEvent::Start),
                ft: None,
            },
        );
        let adv = advance(&tl, &mut cur, ping(56.0));
        let got = fired(&tl, &adv);
        assert_eq!(got.first().map(String::as_str), Some("b1.a0.q1"));
        assert_eq!(got.last().map(String::as_str), Some("b0.a1.start"));
        assert_eq!(got.len(), 6 + 6);
    }

    #[test]
    fn a_seek_over_the_midroll_fires_nothing_of_it() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        advance(
            &tl,
            &mut cur,
            Ping {
                pt: 0.0,
                ev: Some(PingEvent::Start),
                ft: None,
            },
        );
        for pt in [2.5, 5.0, 7.5, 10.0] {
            advance(&tl, &mut cur, ping(pt));
        }
        advance(&tl, &mut cur, ping(20.0));
        let seek = Ping {
            pt: 80.0,
            ev: Some(PingEvent::Seek),
            ft: Some(20.0),
        };
        let adv = advance(&tl, &mut cur, seek);
        assert!(adv.crossings.is_empty());
        assert_eq!(tl.next_time(80.0), 100.0);
        let adv = advance(&tl, &mut cur, ping(100.0));
        assert!(fired(&tl, &adv).is_empty());
        assert!(adv.reached_end);
        assert!(cur.fired.iter().all(|id| id.starts_with("b1.")));
    }

    #[test]
    fn a_seek_into_an_ad_fires_nothing_of_that_ad_but_the_next_one_counts() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        advance(
            &tl,
            &mut cur,
            Ping {
                pt: 20.0,
                ev: Some(PingEvent::Start),
                ft: None,
            },
        );
        let seek = Ping {
            pt: 45.0,
            ev: Some(PingEvent::Seek),
            ft: Some(20.0),
        };
        assert!(fired(&tl, &advance(&tl, &mut cur, seek)).is_empty());
        assert_eq!(tl.next_time(45.0), 47.5);
        let mut got = Vec::new();
        for pt in [47.5, 51.25, 55.0, 58.75, 62.5, 66.25, 70.0] {
            got.extend(fired(&tl, &advance(&tl, &mut cur, ping(pt))));
        }
        // Ad 1 was entered mid-way: none of it; ad 2 in full; the break's
        // end not (its start was not reached in this run).
        assert_eq!(
            got,
            vec![
                "b0.a1.start",
                "b0.a1.q1",
                "b0.a1.q2",
                "b0.a1.q3",
                "b0.a1.end"
            ]
        );
    }

    #[test]
    fn a_seek_landing_on_an_ad_start_fires_it() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        advance(
            &tl,
            &mut cur,
            Ping {
                pt: 20.0,
                ev: Some(PingEvent::Start),
                ft: None,
            },
        );
        let seek = Ping {
            pt: 55.0,
            ev: Some(PingEvent::Seek),
            ft: Some(25.0),
        };
        assert_eq!(
            fired(&tl, &advance(&tl, &mut cur, seek)),
            vec!["b0.a1.start"]
        );
    }

    #[test]
    fn going_back_without_seek_is_a_seek() {
        let tl = Timeline::vod(&asset());
        let mut cur = Cursor::default();
        advance(
            &tl,
            &mut cur,
            Ping {
                pt: 0.0,
                ev: Some(PingEvent::Start),
                ft: None,
            },
        );
        advance(&tl, &mut cur, ping(30.0));
        let adv = advance(&tl, &mut cur, ping(12.0));
        assert_eq!(adv.jump_to, Some(12.0));
        assert!(adv.crossings.is_empty());
    }

    #[test]
    fn live_breaks_sit_at_their_wall_clock_time() {
        let channel = Channel {
            id: "c".into(),
            property: "p".into(),
            play_url: "http://x/c.m3u8".into(),
            breaks: vec![
                LiveBreak {
                    id: "past".into(),
                    start_ms: 1_000,
                    duration: Some(30.0),
                    events: BreakEvents::default(),
                    ads: vec![ad("x", 30.0)],
                },
                LiveBreak {
                    id: "open".into(),
                    start_ms: 200_000,
                    duration: None,
                    events: BreakEvents::default(),
                    ads: (0..20).map(|i| ad(&format!("o{i}"), 30.0)).collect(),
                },
            ],
        };
        let tl = Timeline::live(&channel, 100_000);
        assert_eq!(tl.breaks.len(), 1);
        let b = &tl.breaks[0];
        assert_eq!((b.start, b.end), (100.0, None));
        // Unknown length: the ads of the 240-s request (8 × 30 s).
        assert_eq!(b.ads.len(), 8);
        assert_eq!(tl.next_time(0.0), 60.0);
        assert_eq!(tl.next_time(90.0), 100.0);
        // Ad 8 runs 310–340 (third quartile 332.5); then the break is still
        // open: every 10 s.
        assert_eq!(tl.next_time(331.0), 332.5);
        assert_eq!(tl.next_time(341.0), 351.0);
        assert!(tl.boundaries.iter().all(|b| b.mark != Mark::BreakEnd));
    }

    #[test]
    fn ping_events_split_content_and_ad_time() {
        let tl = Timeline::vod(&asset());
        let ads: Vec<Vec<AdInfo>> = asset()
            .breaks
            .iter()
            .map(|b| {
                b.ads
                    .iter()
                    .map(|a| AdInfo {
                        creative: a.creative.clone(),
                        duration: a.duration,
                    })
                    .collect()
            })
            .collect();
        let mut cur = Cursor::default();
        let start = Ping {
            pt: 30.0,
            ev: Some(PingEvent::Start),
            ft: None,
        };
        let before = cur.clone();
        let adv = advance(&tl, &mut cur, start);
        let evs = ping_events(&tl, &before, &adv, 0, &ads);
        let names: Vec<&str> = evs.iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, vec!["play", "progress"]);
        cur.last_ms = Some(0);
        // 30 → 56 over 26 s: content 30→40 (content 20→30), break from 40,
        // ad 1 whole, ad 2 started at 55.
        let before = cur.clone();
        let adv = advance(&tl, &mut cur, ping(56.0));
        let evs = ping_events(&tl, &before, &adv, 26_000, &ads);
        let got: Vec<(Millis, &str, f64)> = evs
            .iter()
            .map(|e| (e.t, e.kind.name(), e.playhead.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (10_000, "progress", 30.0),
                (10_000, "adbreakstart", 30.0),
                (10_000, "adstart", 30.0),
                (13_750, "adquartile", 30.0),
                (17_500, "adquartile", 30.0),
                (21_250, "adquartile", 30.0),
                (25_000, "adcomplete", 30.0),
                (25_000, "adstart", 30.0),
                (26_000, "progress", 46.0),
            ]
        );
    }
}
