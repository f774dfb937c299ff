//! Parsers for the scalar values written as strings in `cluster.toml`: durations
//! ("1m30s"), names, addresses ("10.0.0.1", "10.0.0.1:7400", "10.0.0.100/24",
//! "smtp.example.com:587"). Pure functions from `&str` to a value or a [`ValueError`]
//! (message, label and help); they know nothing of TOML, spans or codes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::model::HostPort;

/// Why a string is not a valid value; the caller attaches the code and the span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValueError {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

fn fail<T>(message: impl Into<String>, label: &str, help: Option<&str>) -> Result<T, ValueError> {
    Err(ValueError { message: message.into(), label: label.into(), help: help.map(Into::into) })
}

pub(crate) const DURATION_UNITS_HELP: &str =
    "write whole numbers with the units h, m, s or ms, largest first: \"100ms\", \"2s\", \"1m30s\"";

/// "100ms", "2s", "10m", "1h", "1m30s", "1h0m5s": whole numbers with units h, m, s, ms,
/// each unit at most once, largest first.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let help = Some(DURATION_UNITS_HELP);
    if text.is_empty() {
        return fail("empty duration", "expected a duration such as \"2s\"", help);
    }
    if text.starts_with('-') {
        return fail(format!("negative duration \"{text}\""), "durations cannot be negative", help);
    }
    let bytes = text.as_bytes();
    let mut total_ms: u64 = 0;
    let mut previous_unit: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return fail(
                format!("invalid duration \"{text}\""),
                "expected a number followed by a unit",
                help,
            );
        }
        let number = &text[digits_start..i];
        if i < bytes.len() && (bytes[i] == b'.' || bytes[i] == b',') {
            return fail(
                format!("fractional duration \"{text}\""),
                "fractions are not accepted",
                Some("write a smaller unit instead: \"1500ms\" rather than \"1.5s\", \"90s\" rather than \"1.5m\""),
            );
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &text[unit_start..i];
        if unit.is_empty() {
            if i == bytes.len() {
                return fail(
                    format!("duration \"{text}\" has no unit"),
                    "missing unit",
                    Some(&format!("write \"{number}ms\" or \"{number}s\"")),
                );
            }
            return fail(format!("invalid duration \"{text}\""), "unexpected character", help);
        }
        let Some(position) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return fail(
                format!("unknown duration unit `{unit}` in \"{text}\""),
                "unknown unit",
                help,
            );
        };
        if previous_unit.is_some_and(|p| p >= position) {
            return fail(
                format!("duration units out of order in \"{text}\""),
                "each unit at most once, largest first",
                help,
            );
        }
        previous_unit = Some(position);
        let too_large = || {
            fail(
                format!("duration \"{text}\" is too large"),
                "too large",
                Some("durations must be below 10^12 hours"),
            )
        };
        let Ok(value) = number.parse::<u64>() else { return too_large() };
        let Some(ms) = value.checked_mul(UNITS[position].1) else { return too_large() };
        let Some(sum) = total_ms.checked_add(ms) else { return too_large() };
        total_ms = sum;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way the file writes it: "1m30s", "400ms", "0s".
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// The longest name accepted for clusters, nodes, links, groups and resources.
pub const NAME_LENGTH_MAX: usize = 63;

/// Names: 1 to 63 ASCII letters, digits, '-', '_', '.', starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<(), ValueError> {
    let help = Some("names use 1 to 63 ASCII letters, digits, '-', '_' and '.', and start with a letter or digit");
    if name.is_empty() {
        return fail("empty name", "a name cannot be empty", help);
    }
    if name.len() > NAME_LENGTH_MAX {
        return fail(
            format!("name is {} characters long, more than {NAME_LENGTH_MAX}", name.len()),
            "too long",
            help,
        );
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return fail(format!("invalid name \"{name}\""), "must start with a letter or digit", help);
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return fail(
            format!("invalid name \"{name}\""),
            &format!("character {c:?} is not allowed"),
            help,
        );
    }
    Ok(())
}

pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, ValueError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    let help = if text.contains('/') {
        Some("write the address without a prefix length")
    } else if text.bytes().any(|b| b.is_ascii_alphabetic()) && !text.contains(':') {
        Some("host names are not accepted here; write a literal address such as \"192.168.50.1\"")
    } else {
        Some(
            "write an IPv4 address such as \"192.168.50.1\" or an IPv6 address such as \"fd00::1\"",
        )
    };
    fail(format!("invalid IP address \"{text}\""), "not an IP address", help)
}

/// "10.0.0.100/24", "fd00::100/64".
pub(crate) fn parse_cidr(text: &str) -> Result<(IpAddr, u8), ValueError> {
    let help = Some(
        "write the address with its prefix length, e.g. \"10.0.0.100/24\" or \"fd00::100/64\"",
    );
    let Some((address, prefix)) = text.split_once('/') else {
        if text.parse::<IpAddr>().is_ok() {
            return fail(
                format!("address \"{text}\" has no prefix length"),
                "missing \"/PREFIX\"",
                help,
            );
        }
        return fail(
            format!("invalid address \"{text}\""),
            "not an address with prefix length",
            help,
        );
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        return fail(
            format!("invalid IP address \"{address}\" in \"{text}\""),
            "not an IP address",
            help,
        );
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max && !prefix.starts_with('+') => Ok((ip, p)),
        _ => fail(
            format!("invalid prefix length \"{prefix}\" in \"{text}\""),
            &format!("prefix length must be 0 to {max}"),
            help,
        ),
    }
}

/// What went wrong with an address that may carry a port.
#[derive(Debug)]
pub(crate) enum AddressError {
    /// Bad IP part (code E1017).
    Ip(ValueError),
    /// Port 0 or out of range (code E1019).
    Port(ValueError),
    /// Not an "ip:port" shape at all (code E1020).
    Shape(ValueError),
}

fn port_error<T>(port: &str, text: &str) -> Result<T, AddressError> {
    Err(AddressError::Port(ValueError {
        message: format!("invalid port \"{port}\" in \"{text}\""),
        label: "ports are 1 to 65535".into(),
        help: None,
    }))
}

fn split_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        Some((host, port))
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if host.contains(':') {
            return None; // an IPv6 address without brackets
        }
        Some((host, port))
    }
}

fn parse_port(port: &str, text: &str) -> Result<u16, AddressError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return port_error(port, text);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => port_error(port, text),
        Ok(p) => Ok(p),
    }
}

/// "10.0.0.11:7400", "[fd00::11]:7400".
pub(crate) fn parse_socket_address(text: &str) -> Result<SocketAddr, AddressError> {
    let shape = || {
        AddressError::Shape(ValueError {
            message: format!("invalid address \"{text}\""),
            label: "expected \"IP:PORT\"".into(),
            help: Some("write e.g. \"10.0.0.11:7400\", or \"[fd00::11]:7400\" for IPv6".into()),
        })
    };
    let (host, port) = split_port(text).ok_or_else(shape)?;
    let ip = host.parse::<IpAddr>().map_err(|_| match parse_ip(host) {
        Err(e) => AddressError::Ip(e),
        Ok(_) => shape(),
    })?;
    let port = parse_port(port, text)?;
    Ok(SocketAddr::new(ip, port))
}

/// A node's address on a link: "192.168.50.1" (the link's port) or "127.0.0.1:5406".
pub(crate) fn parse_link_address(text: &str, link_port: u16) -> Result<SocketAddr, AddressError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, link_port));
    }
    if split_port(text).is_some() {
        return parse_socket_address(text);
    }
    Err(AddressError::Ip(parse_ip(text).err().unwrap_or_else(|| ValueError {
        message: format!("invalid address \"{text}\""),
        label: "expected \"IP\" or \"IP:PORT\"".into(),
        help: None,
    })))
}

/// "smtp.example.com:587", "10.0.0.5:25", "[fd00::5]:25".
pub(crate) fn parse_host_port(text: &str) -> Result<HostPort, AddressError> {
    let shape = |label: &str| {
        AddressError::Shape(ValueError {
            message: format!("invalid address \"{text}\""),
            label: label.into(),
            help: Some("write e.g. \"smtp.example.com:587\"".into()),
        })
    };
    let (host, port) = split_port(text).ok_or_else(|| shape("expected \"HOST:PORT\""))?;
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<IpAddr>().is_ok()
            || host.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !part.starts_with('-')
            }));
    if !valid_host {
        return Err(shape("not a valid host name or address"));
    }
    let port = parse_port(port, text)?;
    Ok(HostPort { host: host.to_string(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("100ms"), Ok(100));
        assert_eq!(ms("2s"), Ok(2000));
        assert_eq!(ms("10m"), Ok(600_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("1h2m3s4ms"), Ok(3_723_004));
        assert_eq!(ms("0s"), Ok(0));
        for bad in [
            "",
            "100",
            "-1s",
            "1.5s",
            "5sec",
            "2d",
            "30s1m",
            "1s1s",
            "s",
            " 1s",
            "1s ",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("100").unwrap_err().help.unwrap().contains("\"100ms\""));
    }

    #[test]
    fn durations_format_back() {
        for s in ["1m30s", "400ms", "0s", "1h", "2s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn names() {
        for good in ["alpha", "db", "web-1", "a.b_c", "0"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "é", "a/b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_link_address("10.0.0.1", 5405).unwrap().to_string(), "10.0.0.1:5405");
        assert_eq!(parse_link_address("10.0.0.1:5406", 5405).unwrap().to_string(), "10.0.0.1:5406");
        assert_eq!(parse_link_address("fd00::1", 5405).unwrap().to_string(), "[fd00::1]:5405");
        assert_eq!(parse_link_address("[fd00::1]:7", 5405).unwrap().to_string(), "[fd00::1]:7");
        assert!(matches!(parse_link_address("10.0.0.256", 1), Err(AddressError::Ip(_))));
        assert!(matches!(parse_link_address("10.0.0.1:0", 1), Err(AddressError::Port(_))));
        assert!(matches!(parse_link_address("10.0.0.1:70000", 1), Err(AddressError::Port(_))));
        assert!(matches!(parse_link_address("alpha", 1), Err(AddressError::Ip(_))));
        assert!(matches!(parse_socket_address("10.0.0.1"), Err(AddressError::Shape(_))));
        assert!(matches!(parse_socket_address("10.0.0.x:80"), Err(AddressError::Ip(_))));
        assert_eq!(parse_cidr("10.0.0.100/24").unwrap().1, 24);
        assert_eq!(parse_cidr("fd00::1/128").unwrap().1, 128);
        for bad in ["10.0.0.1", "10.0.0.1/33", "fd00::1/129", "x/24", "10.0.0.1/", "10.0.0.1/+3"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_host_port("smtp.example.com:587").unwrap().port, 587);
        assert!(parse_host_port("smtp.example.com").is_err());
        assert!(parse_host_port("bad host:25").is_err());
        assert!(parse_host_port("[fd00::5]:25").is_ok());
    }
}
