//! Protocol and dimension names, as they appear in the API (`spec/api.md`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The wire protocol a session arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Pixel,
    MediaCollection,
    Ping,
    UserActivity,
    PlayerMessages,
    Native,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::Pixel,
        Protocol::MediaCollection,
        Protocol::Ping,
        Protocol::UserActivity,
        Protocol::PlayerMessages,
        Protocol::Native,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Pixel => "pixel",
            Protocol::MediaCollection => "media_collection",
            Protocol::Ping => "ping",
            Protocol::UserActivity => "user_activity",
            Protocol::PlayerMessages => "player_messages",
            Protocol::Native => "native",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown protocol `{s}`"))
    }
}

/// A dimension sessions can be filtered and broken down by (`spec/metrics.md`).
/// Custom metadata keys are dimensions too: [`Dimension::Custom`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Property,
    Protocol,
    VideoId,
    ViewerId,
    ContentType,
    PlayerName,
    Browser,
    Os,
    DeviceType,
    Country,
    ReferrerDomain,
    ErrorCode,
    Cdn,
    /// A custom metadata key, named `custom.<key>` in the API.
    Custom(String),
}

impl Dimension {
    /// Every built-in dimension, in the order the API lists them.
    pub const BUILT_IN: [Dimension; 13] = [
        Dimension::Property,
        Dimension::Protocol,
        Dimension::VideoId,
        Dimension::ViewerId,
        Dimension::ContentType,
        Dimension::PlayerName,
        Dimension::Browser,
        Dimension::Os,
        Dimension::DeviceType,
        Dimension::Country,
        Dimension::ReferrerDomain,
        Dimension::ErrorCode,
        Dimension::Cdn,
    ];

    pub fn name(&self) -> String {
        match self {
            Dimension::Custom(k) => format!("custom.{k}"),
            other => other.builtin_name().to_owned(),
        }
    }

    fn builtin_name(&self) -> &'static str {
        match self {
            Dimension::Property => "property",
            Dimension::Protocol => "protocol",
            Dimension::VideoId => "video_id",
            Dimension::ViewerId => "viewer_id",
            Dimension::ContentType => "content_type",
            Dimension::PlayerName => "player_name",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::DeviceType => "device_type",
            Dimension::Country => "country",
            Dimension::ReferrerDomain => "referrer_domain",
            Dimension::ErrorCode => "error_code",
            Dimension::Cdn => "cdn",
            Dimension::Custom(_) => "custom",
        }
    }

    /// Session dimensions a protocol stores as custom metadata under its own
    /// wire names, which filters and breakdowns also take bare:
    /// `contentType` is `custom.contentType`. These are the User Activity
    /// Vault's (`spec/protocols.md` §4, issue 6).
    pub const CUSTOM_ALIASES: [&'static str; 6] = [
        "contentType",
        "contentSource",
        "editorialId",
        "technicalId",
        "programmeId",
        "deviceId",
    ];

    /// Valid names, for the `400` that lists them.
    pub fn valid_names() -> String {
        let mut names: Vec<&str> = Dimension::BUILT_IN
            .iter()
            .map(|d| d.builtin_name())
            .collect();
        names.extend(Dimension::CUSTOM_ALIASES);
        names.push("custom.<key>");
        names.join(", ")
    }
}

impl FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(key) = s.strip_prefix("custom.") {
            if key.is_empty() {
                return Err("custom dimension needs a key: `custom.<key>`".into());
            }
            return Ok(Dimension::Custom(key.to_owned()));
        }
        if Dimension::CUSTOM_ALIASES.contains(&s) {
            return Ok(Dimension::Custom(s.to_owned()));
        }
        Dimension::BUILT_IN
            .iter()
            .find(|d| d.builtin_name() == s)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "unknown dimension `{s}`; valid: {}",
                    Dimension::valid_names()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for d in Dimension::BUILT_IN {
            assert_eq!(d.name().parse::<Dimension>().unwrap(), d);
        }
        assert_eq!(
            "custom.show".parse::<Dimension>().unwrap(),
            Dimension::Custom("show".into())
        );
        assert!("colour"
            .parse::<Dimension>()
            .unwrap_err()
            .contains("valid:"));
        // Issue 6: UAV dimensions resolve to their custom metadata keys.
        assert_eq!(
            "programmeId".parse::<Dimension>().unwrap(),
            Dimension::Custom("programmeId".into())
        );
        assert!(Dimension::valid_names().contains("contentType"));
        assert!("contenttype".parse::<Dimension>().is_err());
    }
}
