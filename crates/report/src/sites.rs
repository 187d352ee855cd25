//! Sites: which named client-address ranges an address belongs to.

use std::net::{IpAddr, SocketAddr};

use bascule_store::Site;
use ipnet::IpNet;

use crate::ReportError;

/// Parses one range: a CIDR (`10.20.0.0/16`, `2001:db8::/32`) or a single address (a /32 or
/// /128). Host bits are cleared (`10.20.1.0/16` is `10.20.0.0/16`).
fn parse_range(text: &str) -> Result<IpNet, ReportError> {
    let text = text.trim();
    let invalid = || ReportError::InvalidRange {
        range: text.to_owned(),
    };
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if text.contains('/') {
        return Err(invalid());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| invalid())
}

/// Validates ranges as an administrator types them: comma- or space-separated CIDRs (IPv4 or
/// IPv6). Returns them normalised (host bits cleared), in order; the first invalid one is an
/// error naming it. At least one range is required.
pub fn parse_ranges(text: &str) -> Result<Vec<IpNet>, ReportError> {
    let ranges = text
        .split([',', ' ', '\n', '\t', ';'])
        .filter(|part| !part.trim().is_empty())
        .map(parse_range)
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() {
        return Err(ReportError::InvalidRange {
            range: text.trim().to_owned(),
        });
    }
    Ok(ranges)
}

/// Reads a client address as the gateway stores it: an IP address, possibly with a port
/// (`10.1.2.3:5000`, `[2001:db8::1]:443`); IPv4-mapped IPv6 addresses are read as IPv4.
pub(crate) fn parse_client_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let address = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|socket| socket.ip()))?;
    Some(address.to_canonical())
}

/// The sites, ready to classify client addresses: the most specific range wins (longest
/// prefix), then the first site in the given order.
#[derive(Debug, Clone, Default)]
pub struct SiteMap {
    /// (site index, range), most specific first.
    ranges: Vec<(usize, IpNet)>,
    sites: Vec<(String, String)>,
    ignored: Vec<String>,
}

impl SiteMap {
    /// Builds the map; a range that does not parse is skipped and listed in
    /// [`SiteMap::ignored`] (the administration validates ranges when they are written, so this
    /// only happens to a database edited by hand).
    pub fn new(sites: &[Site]) -> Self {
        let mut map = SiteMap::default();
        for (index, site) in sites.iter().enumerate() {
            map.sites.push((site.id.clone(), site.name.clone()));
            for range in &site.ranges {
                match parse_range(range) {
                    Ok(net) => map.ranges.push((index, net)),
                    Err(_) => map.ignored.push(format!("{}: {range}", site.id)),
                }
            }
        }
        // Stable: equal prefixes keep the sites' order.
        map.ranges
            .sort_by_key(|(index, net)| (std::cmp::Reverse(net.prefix_len()), *index));
        map
    }

    /// The index (in the order given to [`SiteMap::new`]) of the site of `address`, if any.
    pub fn site_of(&self, address: IpAddr) -> Option<usize> {
        let address = address.to_canonical();
        self.ranges
            .iter()
            .find(|(_, net)| net.contains(&address))
            .map(|&(index, _)| index)
    }

    /// The site of a stored client address (text), if it parses and falls in one.
    pub fn site_of_text(&self, address: &str) -> Option<usize> {
        parse_client_address(address).and_then(|address| self.site_of(address))
    }

    /// The sites' (id, name), in the order given.
    pub fn sites(&self) -> &[(String, String)] {
        &self.sites
    }

    /// The ranges skipped because they do not parse, as `site id: range`.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn site(id: &str, ranges: &[&str]) -> Site {
        Site {
            id: id.into(),
            name: id.to_uppercase(),
            ranges: ranges.iter().map(|&range| range.to_owned()).collect(),
        }
    }

    #[test]
    fn ranges_as_typed() {
        let ranges = parse_ranges("10.20.0.0/16, 10.21.1.7/16\n2001:db8::/32 192.0.2.9").unwrap();
        let text: Vec<_> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "10.20.0.0/16",
                "10.21.0.0/16",
                "2001:db8::/32",
                "192.0.2.9/32"
            ]
        );
        for bad in [
            "",
            " , ",
            "10.20.0.0/33",
            "10.20.0/16",
            "meaux",
            "2001:db8::/129",
        ] {
            assert!(
                matches!(parse_ranges(bad), Err(ReportError::InvalidRange { .. })),
                "{bad:?}"
            );
        }
        let error = parse_ranges("10.0.0.0/8, nope/8").unwrap_err();
        assert!(error.to_string().contains("\"nope/8\""), "{error}");
        assert!(error.message(crate::Lang::Fr).contains("invalide"));
    }

    #[test]
    fn longest_prefix_then_order() {
        let map = SiteMap::new(&[
            site("hq", &["10.0.0.0/8"]),
            site("meaux", &["10.20.0.0/16", "2001:db8:20::/48", "bad"]),
            site("twin", &["10.20.0.0/16"]),
        ]);
        assert_eq!(map.ignored(), ["meaux: bad"]);
        assert_eq!(map.site_of_text("10.20.3.4"), Some(1));
        assert_eq!(map.site_of_text("10.21.3.4"), Some(0));
        assert_eq!(map.site_of_text("10.20.3.4:51000"), Some(1));
        assert_eq!(map.site_of_text("::ffff:10.20.3.4"), Some(1));
        assert_eq!(map.site_of_text("[2001:db8:20::5]:443"), Some(1));
        assert_eq!(map.site_of_text("2001:db8:21::5"), None);
        assert_eq!(map.site_of_text("192.0.2.1"), None);
        assert_eq!(map.site_of_text("garbage"), None);
        assert_eq!(map.sites()[1], ("meaux".to_owned(), "MEAUX".to_owned()));
    }
}
