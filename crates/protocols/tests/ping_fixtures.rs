//! VMAP/VAST fixtures of the ping protocol's admin API
//! (`tests/data/ping/vmap/`): the valid documents parse to the schedule
//! written out here by hand; every broken one gets its `400` field and reason
//! (`expected_errors.json`), and every broken file is listed there.

use playhead_model::ads::BreakPosition;
use playhead_protocols::ping::vmap;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ping/vmap")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn preroll_and_two_ad_midroll() {
    let breaks = vmap::parse(&read("valid_preroll_midroll.xml"), 60.0).expect("valid");
    assert_eq!(breaks.len(), 2);
    let pre = &breaks[0];
    assert_eq!(
        (pre.position, pre.time_offset),
        (BreakPosition::Preroll, 0.0)
    );
    assert_eq!(
        pre.events.impressions,
        vec!["http://ads.test/break?b=pre&e=start"]
    );
    assert_eq!(
        pre.events.completes,
        vec!["http://ads.test/break?b=pre&e=end"]
    );
    assert_eq!(pre.ads.len(), 1);
    let ad = &pre.ads[0];
    assert_eq!((ad.creative.as_str(), ad.duration), ("cr-pre", 10.0));
    assert_eq!((ad.width, ad.height), (Some(1280), Some(720)));
    // Impression (CDATA, trimmed) then the `start` tracking URL; `pause` is not kept.
    assert_eq!(
        ad.events.impressions,
        vec![
            "http://ads.test/imp?ad=pre&t=[TIMESTAMP]",
            "http://ads.test/start?ad=pre&cb=[CACHEBUSTING]"
        ]
    );
    assert_eq!(ad.events.firstquartiles, vec!["http://ads.test/q1?ad=pre"]);
    assert_eq!(ad.events.midpoints, vec!["http://ads.test/mid?ad=pre"]);
    assert_eq!(ad.events.thirdquartiles, vec!["http://ads.test/q3?ad=pre"]);
    assert_eq!(
        ad.events.completes,
        vec!["http://ads.test/complete?ad=pre&ph=[CONTENTPLAYHEAD]"]
    );

    let mid = &breaks[1];
    assert_eq!(
        (mid.position, mid.time_offset),
        (BreakPosition::Midroll, 30.0)
    );
    assert!(mid.events.impressions.is_empty());
    // `sequence` orders the ads: m1 (sequence 1) before m2 although listed after.
    let ids: Vec<&str> = mid.ads.iter().map(|a| a.creative.as_str()).collect();
    assert_eq!(ids, vec!["cr-m1", "cr-m2"]);
    assert_eq!(mid.duration(), 30.0);
    assert_eq!(
        mid.ads[0].events.impressions,
        vec![
            "http://ads.test/imp?ad=m1",
            "http://other.test/imp?ad=m1&x=1"
        ]
    );
    assert_eq!(
        mid.ads[0].events.completes,
        vec!["http://ads.test/complete?ad=m1&err=[ERRORCODE]&aph=[ADPLAYHEAD]"]
    );
    assert_eq!((mid.ads[0].width, mid.ads[1].width), (Some(640), None));
    assert_eq!(
        mid.ads[1].events.completes,
        vec!["http://ads.test/complete?ad=m2"]
    );
}

#[test]
fn percent_offset_and_postroll() {
    let breaks = vmap::parse(&read("valid_percent_and_postroll.xml"), 90.0).expect("valid");
    assert_eq!(breaks.len(), 2);
    assert_eq!(
        (breaks[0].position, breaks[0].time_offset),
        (BreakPosition::Midroll, 45.0)
    );
    assert_eq!(breaks[0].ads[0].creative, "ad1");
    assert_eq!(
        breaks[0].ads[0].events.impressions,
        vec!["https://ads.test/half"]
    );
    assert_eq!(
        (breaks[1].position, breaks[1].time_offset),
        (BreakPosition::Postroll, 90.0)
    );
    assert_eq!(breaks[1].ads[0].creative, "last");
    assert_eq!(breaks[1].ads[0].duration, 20.0);
}

#[test]
fn broken_documents_get_their_reason() {
    let expected: Value = serde_json::from_str(&read("expected_errors.json")).unwrap();
    let expected = expected.as_object().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("broken_") {
            continue;
        }
        let want = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not listed in expected_errors.json"));
        let err = vmap::parse(&read(&name), 60.0)
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(err.field(), want["field"].as_str(), "{name}: {err}");
        let reason = want["reason"].as_str().unwrap();
        assert!(
            err.to_string().contains(reason),
            "{name}: `{err}` lacks `{reason}`"
        );
        checked += 1;
    }
    assert_eq!(checked, expected.len() - 1, "every listed file exists");
}

#[test]
fn clock_values() {
    assert_eq!(vmap::parse_clock("00:00:15"), Some(15.0));
    assert_eq!(vmap::parse_clock("01:02:03.250"), Some(3723.25));
    assert_eq!(vmap::parse_clock("00:61:00"), None);
    assert_eq!(vmap::parse_clock("15"), None);
}
