//! VMAP 1.0 documents with inline VAST (2.0–4.x) → an ad schedule.
//!
//! What is read: each `vmap:AdBreak` (`timeOffset`: `start`, `end`,
//! `HH:MM:SS[.mmm]` or `n%`; `breakType` must include `linear`), its
//! `vmap:TrackingEvents` (`breakStart`, `breakEnd`), and in
//! `vmap:AdSource/vmap:VASTAdData/VAST` each `Ad/InLine`: `Impression`s, the
//! first `Linear` creative's `Duration`, its `TrackingEvents` (`start`,
//! `firstQuartile`, `midpoint`, `thirdQuartile`, `complete`) and the size of
//! its first `MediaFile`. Ads play in `sequence` order (document order when
//! absent).
//!
//! What is refused, with the path of the element: malformed XML, a root
//! other than `VMAP`, an `AdTagURI` (ad tags are not fetched: give the VAST
//! inline), a VAST `Wrapper`, positional offsets (`#n`), an ad without a
//! linear creative or without a valid `Duration`, a break without ads.

use crate::raw::ProtocolError;
use playhead_model::ads::{Ad, AdBreak, AdEvents, BreakEvents, BreakPosition};
use quick_xml::events::Event as Xml;
use quick_xml::Reader;

/// An element: local name (namespace prefix dropped), attributes, text, children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rfind(':') {
        Some(i) => s[i + 1..].to_owned(),
        None => s.into_owned(),
    }
}

fn xml_error(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::invalid(
        "vmap",
        format!(
            "not well-formed XML at byte {}: {e}",
            reader.buffer_position()
        ),
    )
}

/// Parse the whole document into a tree.
fn parse_tree(xml: &str) -> Result<Node, ProtocolError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        match event {
            Xml::Start(e) => {
                let node = element(&reader, &e)?;
                stack.push(node);
            }
            Xml::Empty(e) => {
                let node = element(&reader, &e)?;
                stack.last_mut().expect("root").children.push(node);
            }
            Xml::End(_) => {
                let node = stack.pop().expect("balanced");
                let Some(parent) = stack.last_mut() else {
                    return Err(xml_error(&reader, "unbalanced end tag"));
                };
                parent.children.push(node);
            }
            Xml::Text(t) => {
                let text = t.xml_content().map_err(|e| xml_error(&reader, e))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Xml::CData(t) => {
                let text = t.xml_content().map_err(|e| xml_error(&reader, e))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Xml::GeneralRef(r) => {
                let text = match r.resolve_char_ref().map_err(|e| xml_error(&reader, e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| xml_error(&reader, e))?;
                        match name.as_ref() {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => {
                                return Err(xml_error(
                                    &reader,
                                    format!("unknown entity `&{other};`"),
                                ))
                            }
                        }
                    }
                };
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(xml_error(&reader, "the document ends inside an element"));
    }
    let mut doc = stack.pop().expect("document");
    match doc.children.len() {
        1 => Ok(doc.children.pop().expect("root")),
        0 => Err(ProtocolError::invalid("vmap", "empty document")),
        _ => Err(ProtocolError::invalid("vmap", "more than one root element")),
    }
}

fn element(
    reader: &Reader<&[u8]>,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<Node, ProtocolError> {
    let mut node = Node {
        name: local(e.name().as_ref()),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| xml_error(reader, err))?;
        let value = a.unescape_value().map_err(|err| xml_error(reader, err))?;
        node.attrs
            .push((local(a.key.as_ref()), value.trim().to_owned()));
    }
    Ok(node)
}

/// `HH:MM:SS` or `HH:MM:SS.mmm` → seconds.
pub fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    let sec: f64 = sec.parse().ok()?;
    if m >= 60 || !(0.0..60.0).contains(&sec) {
        return None;
    }
    Some(f64::from(h) * 3600.0 + f64::from(m) * 60.0 + sec)
}

/// The schedule of a VMAP document, for content of `duration_s` seconds.
pub fn parse(xml: &str, duration_s: f64) -> Result<Vec<AdBreak>, ProtocolError> {
    let root = parse_tree(xml)?;
    if root.name != "VMAP" {
        return Err(ProtocolError::invalid(
            "vmap",
            format!("the root element is `{}`, expected `vmap:VMAP`", root.name),
        ));
    }
    let mut breaks = Vec::new();
    for (i, node) in root.children("AdBreak").enumerate() {
        let path = format!("vmap:AdBreak[{}]", i + 1);
        breaks.push(ad_break(node, &path, duration_s)?);
    }
    if breaks.is_empty() {
        return Err(ProtocolError::invalid(
            "vmap",
            "no `vmap:AdBreak` in the document",
        ));
    }
    Ok(breaks)
}

fn ad_break(node: &Node, path: &str, duration_s: f64) -> Result<AdBreak, ProtocolError> {
    let offset = node
        .attr("timeOffset")
        .ok_or_else(|| ProtocolError::invalid(format!("{path}/@timeOffset"), "missing"))?;
    let (time_offset, position) = time_offset(offset, duration_s)
        .map_err(|reason| ProtocolError::invalid(format!("{path}/@timeOffset"), reason))?;
    let kind = node.attr("breakType").unwrap_or("linear");
    if !kind.split(',').any(|k| k.trim() == "linear") {
        return Err(ProtocolError::invalid(
            format!("{path}/@breakType"),
            format!("`{kind}`: only linear breaks are supported"),
        ));
    }
    let mut events = BreakEvents::default();
    if let Some(tracking) = node.child("TrackingEvents") {
        for t in tracking.children("Tracking") {
            let url = t.text.trim();
            if url.is_empty() {
                continue;
            }
            match t.attr("event") {
                Some("breakStart") => events.impressions.push(url.to_owned()),
                Some("breakEnd") => events.completes.push(url.to_owned()),
                _ => {}
            }
        }
    }
    let source = node
        .child("AdSource")
        .ok_or_else(|| ProtocolError::invalid(format!("{path}/vmap:AdSource"), "missing"))?;
    let src_path = format!("{path}/vmap:AdSource");
    if source.child("AdTagURI").is_some() {
        return Err(ProtocolError::invalid(
            format!("{src_path}/vmap:AdTagURI"),
            "ad tags are not fetched: give the VAST inline in `vmap:VASTAdData`",
        ));
    }
    let vast = source
        .child("VASTAdData")
        .and_then(|d| d.child("VAST"))
        .ok_or_else(|| {
            ProtocolError::invalid(format!("{src_path}/vmap:VASTAdData/VAST"), "missing")
        })?;
    let vast_path = format!("{src_path}/vmap:VASTAdData/VAST");
    let mut ads: Vec<(u32, usize, Ad)> = Vec::new();
    for (n, ad_node) in vast.children("Ad").enumerate() {
        let ad_path = format!("{vast_path}/Ad[{}]", n + 1);
        let seq = ad_node
            .attr("sequence")
            .and_then(|s| s.parse().ok())
            .unwrap_or(u32::MAX);
        ads.push((seq, n, inline_ad(ad_node, &ad_path, n)?));
    }
    if ads.is_empty() {
        return Err(ProtocolError::invalid(
            format!("{vast_path}/Ad"),
            "the break has no ad",
        ));
    }
    ads.sort_by_key(|(seq, n, _)| (*seq, *n));
    Ok(AdBreak {
        position,
        time_offset,
        events,
        ads: ads.into_iter().map(|(_, _, ad)| ad).collect(),
    })
}

fn time_offset(offset: &str, duration_s: f64) -> Result<(f64, BreakPosition), String> {
    let position = |t: f64| {
        if t <= 0.0 {
            BreakPosition::Preroll
        } else if t >= duration_s {
            BreakPosition::Postroll
        } else {
            BreakPosition::Midroll
        }
    };
    let t = match offset {
        "start" => 0.0,
        "end" => duration_s,
        o if o.starts_with('#') => {
            return Err(format!(
                "`{o}`: positional offsets are not supported; use start, end, HH:MM:SS or n%"
            ))
        }
        o if o.ends_with('%') => {
            let pct: f64 = o[..o.len() - 1]
                .trim()
                .parse()
                .map_err(|_| format!("`{o}` is not a percentage"))?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(format!("`{o}` is outside 0–100 %"));
            }
            pct / 100.0 * duration_s
        }
        o => parse_clock(o)
            .ok_or_else(|| format!("`{o}` is not start, end, HH:MM:SS[.mmm] or n%"))?,
    };
    if t > duration_s {
        return Err(format!(
            "`{offset}` is after the end of the content ({duration_s} s)"
        ));
    }
    Ok((t, position(t)))
}

fn inline_ad(node: &Node, path: &str, n: usize) -> Result<Ad, ProtocolError> {
    if node.child("Wrapper").is_some() {
        return Err(ProtocolError::invalid(
            format!("{path}/Wrapper"),
            "VAST wrappers are not followed: give the InLine ad",
        ));
    }
    let inline = node
        .child("InLine")
        .ok_or_else(|| ProtocolError::invalid(format!("{path}/InLine"), "missing"))?;
    let linear = inline
        .child("Creatives")
        .into_iter()
        .flat_map(|c| c.children("Creative"))
        .find_map(|c| c.child("Linear").map(|l| (c, l)));
    let Some((creative, linear)) = linear else {
        return Err(ProtocolError::invalid(
            format!("{path}/InLine/Creatives/Creative/Linear"),
            "no linear creative",
        ));
    };
    let lin_path = format!("{path}/InLine/Creatives/Creative/Linear");
    let duration_text = linear
        .child("Duration")
        .map(|d| d.text.trim().to_owned())
        .ok_or_else(|| ProtocolError::invalid(format!("{lin_path}/Duration"), "missing"))?;
    let duration = parse_clock(&duration_text)
        .filter(|d| *d > 0.0)
        .ok_or_else(|| {
            ProtocolError::invalid(
                format!("{lin_path}/Duration"),
                format!("`{duration_text}` is not a positive HH:MM:SS[.mmm]"),
            )
        })?;
    let mut events = AdEvents::default();
    for imp in inline.children("Impression") {
        let url = imp.text.trim();
        if !url.is_empty() {
            events.impressions.push(url.to_owned());
        }
    }
    if let Some(tracking) = linear.child("TrackingEvents") {
        for t in tracking.children("Tracking") {
            let url = t.text.trim().to_owned();
            if url.is_empty() {
                continue;
            }
            match t.attr("event") {
                Some("start") => events.impressions.push(url),
                Some("firstQuartile") => events.firstquartiles.push(url),
                Some("midpoint") => events.midpoints.push(url),
                Some("thirdQuartile") => events.thirdquartiles.push(url),
                Some("complete") => events.completes.push(url),
                _ => {}
            }
        }
    }
    let media = linear
        .child("MediaFiles")
        .and_then(|m| m.child("MediaFile"));
    let size = |name: &str| {
        media
            .and_then(|m| m.attr(name))
            .and_then(|v| v.parse().ok())
    };
    let creative_id = creative
        .attr("id")
        .or_else(|| creative.attr("adId"))
        .or_else(|| node.attr("id"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("ad{}", n + 1));
    Ok(Ad {
        creative: creative_id,
        duration,
        width: size("width"),
        height: size("height"),
        events,
        fw_parameters: None,
    })
}
