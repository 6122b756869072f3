//! What Warren reads from a client's X.509 certificate: its subject and
//! issuer as RabbitMQ prints them (an RFC 4514 string, most specific part
//! first: `CN=app,O=Example,C=FR`), its validity (`2025-09-25T10:26:01Z -
//! 2026-09-25T10:26:01Z`) and its subject alternative names. These feed
//! the EXTERNAL login (`ssl_cert_login_from`) and `/api/connections`'
//! `peer_cert_*` fields. The certificate was already verified by rustls;
//! this is a small DER reader for just these parts, which gives `None` for
//! anything it cannot read rather than guessing.

/// One attribute of a name: its OID (dotted) and its value, as text when
/// it is a string type, else as RFC 4514's `#` and the DER in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub oid: String,
    pub value: String,
    /// The value was not a string and is shown as `#hex` (not escaped).
    pub hex: bool,
}

/// A distinguished name: its RDNs in certificate order, each a set of
/// attributes (nearly always one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name(pub Vec<Vec<Attribute>>);

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Email(String),
    Uri(String),
    Ip(std::net::IpAddr),
    /// `otherName`, with a string value (such as a UPN).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub subject: Name,
    pub issuer: Name,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before: String,
    pub not_after: String,
    pub sans: Vec<San>,
}

const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

impl Certificate {
    /// Reads a DER certificate; `None` if it is not one this reader knows.
    pub fn parse(der: &[u8]) -> Option<Certificate> {
        let mut top = der;
        let (0x30, cert) = tlv(&mut top)? else { return None };
        let mut cert = cert;
        let (0x30, tbs) = tlv(&mut cert)? else { return None };
        let mut tbs = tbs;
        let (mut tag, mut body) = tlv(&mut tbs)?;
        if tag == 0xa0 {
            (tag, body) = tlv(&mut tbs)?; // the version; next the serial
        }
        let _serial = (tag == 0x02).then_some(body)?;
        let (0x30, _sig) = tlv(&mut tbs)? else { return None };
        let (0x30, issuer) = tlv(&mut tbs)? else { return None };
        let (0x30, validity) = tlv(&mut tbs)? else { return None };
        let (0x30, subject) = tlv(&mut tbs)? else { return None };
        let (0x30, _spki) = tlv(&mut tbs)? else { return None };
        let mut validity = validity;
        let not_before = time(tlv(&mut validity)?)?;
        let not_after = time(tlv(&mut validity)?)?;
        let mut sans = Vec::new();
        while !tbs.is_empty() {
            let (tag, body) = tlv(&mut tbs)?;
            if tag == 0xa3 {
                sans = extensions(body)?;
            }
        }
        Some(Certificate { subject: name(subject)?, issuer: name(issuer)?, not_before, not_after, sans })
    }

    /// RabbitMQ's `peer_cert_validity`.
    pub fn validity(&self) -> String {
        format!("{} - {}", self.not_before, self.not_after)
    }

    /// The first common name (CN) of the subject.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.0.iter().flatten().find(|a| a.oid == "2.5.4.3" && !a.hex).map(|a| a.value.as_str())
    }
}

/// Reads one DER TLV from the front of `input`: (tag, contents).
fn tlv<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (body, after) = rest.split_at(len);
    *input = after;
    Some((tag, body))
}

fn oid_string(body: &[u8]) -> Option<String> {
    let (&first, rest) = body.split_first()?;
    let mut parts = vec![(first / 40).min(2) as u64, first as u64 - 40 * (first / 40).min(2) as u64];
    let mut acc: u64 = 0;
    for &b in rest {
        acc = acc.checked_mul(128)? | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
    }
    Some(parts.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("."))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// `YYYY-MM-DDTHH:MM:SSZ`.
fn time((tag, body): (u8, &[u8])) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    let full = match tag {
        0x17 if s.len() == 13 => {
            let yy: u32 = s[..2].parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if s.len() == 15 => s.to_owned(),
        _ => return None,
    };
    if !full[..14].bytes().all(|b| b.is_ascii_digit()) || !full.ends_with('Z') {
        return None;
    }
    let f = &full;
    Some(format!("{}-{}-{}T{}:{}:{}Z", &f[0..4], &f[4..6], &f[6..8], &f[8..10], &f[10..12], &f[12..14]))
}

/// A string-typed value as text.
fn string_value(tag: u8, body: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(body.to_vec()).ok(),
        // T61String, read as Latin-1 as most software does.
        0x14 => Some(body.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16BE.
        0x1e if body.len().is_multiple_of(2) => {
            String::from_utf16(&body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect::<Vec<_>>())
                .ok()
        }
        // UniversalString: UTF-32BE.
        0x1c if body.len().is_multiple_of(4) => {
            body.chunks(4).map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Name's contents (a SEQUENCE OF SET OF AttributeTypeAndValue).
fn name(mut body: &[u8]) -> Option<Name> {
    let mut rdns = Vec::new();
    while !body.is_empty() {
        let (0x31, mut set) = tlv(&mut body)? else { return None };
        let mut rdn = Vec::new();
        while !set.is_empty() {
            let (0x30, mut atv) = tlv(&mut set)? else { return None };
            let (0x06, oid) = tlv(&mut atv)? else { return None };
            let value_der = atv;
            let (tag, value) = tlv(&mut atv)?;
            let attr = match string_value(tag, value) {
                Some(text) => Attribute { oid: oid_string(oid)?, value: text, hex: false },
                None => Attribute { oid: oid_string(oid)?, value: format!("#{}", hex(value_der)), hex: true },
            };
            rdn.push(attr);
        }
        rdns.push(rdn);
    }
    Some(Name(rdns))
}

/// The subject alternative names among the extensions, if any.
fn extensions(explicit: &[u8]) -> Option<Vec<San>> {
    let mut outer = explicit;
    let (0x30, mut exts) = tlv(&mut outer)? else { return None };
    while !exts.is_empty() {
        let (0x30, mut ext) = tlv(&mut exts)? else { return None };
        let (0x06, oid) = tlv(&mut ext)? else { return None };
        let (mut tag, mut body) = tlv(&mut ext)?;
        if tag == 0x01 {
            (tag, body) = tlv(&mut ext)?; // critical
        }
        if oid == OID_SAN && tag == 0x04 {
            return general_names(body);
        }
    }
    Some(Vec::new())
}

fn general_names(mut der: &[u8]) -> Option<Vec<San>> {
    let (0x30, mut names) = tlv(&mut der)? else { return None };
    let mut out = Vec::new();
    while !names.is_empty() {
        let (tag, body) = tlv(&mut names)?;
        let text = || String::from_utf8(body.to_vec()).ok();
        match tag {
            0x81 => out.extend(text().map(San::Email)),
            0x82 => out.extend(text().map(San::Dns)),
            0x86 => out.extend(text().map(San::Uri)),
            0x87 => match body.len() {
                4 => out.push(San::Ip(<[u8; 4]>::try_from(body).ok()?.into())),
                16 => out.push(San::Ip(<[u8; 16]>::try_from(body).ok()?.into())),
                _ => {}
            },
            0xa0 => {
                // otherName: type-id OID, then [0] EXPLICIT value.
                let mut b = body;
                let (0x06, _oid) = tlv(&mut b)? else { continue };
                if let Some((0xa0, mut v)) = tlv(&mut b)
                    && let Some((tag, value)) = tlv(&mut v)
                    && let Some(s) = string_value(tag, value)
                {
                    out.push(San::Other(s));
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// The short name RabbitMQ (and OpenSSL's RFC 2253 output) uses for an
/// attribute type; other types print as their dotted OID.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "TITLE",
        "2.5.4.42" => "GIVENNAME",
        "2.5.4.43" => "INITIALS",
        "2.5.4.44" => "GENERATIONQUALIFIER",
        "2.5.4.65" => "PSEUDONYM",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        _ => return None,
    })
}

/// RFC 4514 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for Name {
    /// RFC 4514 order (the last RDN first), attributes of one RDN joined
    /// with `+`, RDNs with `,`: `CN=app,O=Example,C=FR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rdns: Vec<String> = self
            .0
            .iter()
            .rev()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| {
                        let ty = short_name(&a.oid).map(str::to_owned).unwrap_or_else(|| a.oid.clone());
                        let v = if a.hex { a.value.clone() } else { escape(&a.value) };
                        format!("{ty}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        f.write_str(&rdns.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = vec![tag];
        if body.len() < 128 {
            out.push(body.len() as u8);
        } else {
            out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        out.extend(body);
        out
    }

    fn atv(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        seq(0x31, &[&seq(0x30, &[&seq(0x06, &[oid]), &seq(tag, &[value.as_bytes()])])])
    }

    #[test]
    fn reads_names_times_and_sans() {
        let subject = seq(
            0x30,
            &[
                &atv(&[0x55, 4, 6], 0x13, "FR"),
                &atv(&[0x55, 4, 10], 0x0c, "Acme, Inc"),
                &atv(&[0x55, 4, 3], 0x0c, "app"),
            ],
        );
        let issuer = seq(0x30, &[&atv(&[0x55, 4, 3], 0x0c, " CA#1 ")]);
        let validity = seq(0x30, &[&seq(0x17, &[b"250925102601Z"]), &seq(0x18, &[b"20510101000000Z"])]);
        let sans = seq(
            0x30,
            &[
                &seq(0x82, &[b"app.example"]),
                &seq(0x81, &[b"app@example.com"]),
                &seq(0x87, &[&[127, 0, 0, 1]]),
            ],
        );
        let ext = seq(0x30, &[&seq(0x06, &[OID_SAN]), &seq(0x04, &[&sans])]);
        let tbs = seq(
            0x30,
            &[
                &seq(0xa0, &[&seq(0x02, &[&[2]])]),
                &seq(0x02, &[&[1, 2, 3]]),
                &seq(0x30, &[&seq(0x06, &[&[0x2a, 0x86, 0x48]])]),
                &issuer,
                &validity,
                &subject,
                &seq(0x30, &[]),
                &seq(0xa3, &[&seq(0x30, &[&ext])]),
            ],
        );
        let cert = seq(0x30, &[&tbs, &seq(0x30, &[]), &seq(0x03, &[&[0]])]);
        let c = Certificate::parse(&cert).expect("parsed");
        assert_eq!(c.subject.to_string(), "CN=app,O=Acme\\, Inc,C=FR");
        assert_eq!(c.issuer.to_string(), "CN=\\ CA#1\\ ");
        assert_eq!(c.validity(), "2025-09-25T10:26:01Z - 2051-01-01T00:00:00Z");
        assert_eq!(c.common_name(), Some("app"));
        assert_eq!(
            c.sans,
            [
                San::Dns("app.example".into()),
                San::Email("app@example.com".into()),
                San::Ip([127, 0, 0, 1].into())
            ]
        );
        assert_eq!(Certificate::parse(&cert[..cert.len() - 3]), None);
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).unwrap(),
            "1.2.840.113549.1.9.1"
        );
    }
}
