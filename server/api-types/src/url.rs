//! How names are written in the API's URLs, for every client of the API
//! (`warrenctl`, the integration tests) and for the server's own
//! `properties_key`. Both use the `percent-encoding` crate; they differ
//! only in what they leave as is.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986's unreserved characters stay; everything else is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What Python's `urllib.parse.quote_plus` leaves as is (it escapes `~`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// Percent-encodes one URL path segment: the vhost `/` becomes `%2F`.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Encodes as `application/x-www-form-urlencoded` the way RabbitMQ writes
/// a binding's `properties_key` (Python's `quote_plus`): spaces become `+`.
pub fn quote_plus(s: &str) -> String {
    s.split(' ').map(|part| utf8_percent_encode(part, FORM).to_string()).collect::<Vec<_>>().join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_only_unreserved_characters() {
        assert_eq!(segment("/"), "%2F");
        assert_eq!(segment("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(segment("a b%+é"), "a%20b%25%2B%C3%A9");
        assert_eq!(segment(""), "");
    }

    #[test]
    fn quote_plus_reads_like_python() {
        assert_eq!(quote_plus("k y"), "k+y");
        assert_eq!(quote_plus("a~b*c+d"), "a%7Eb%2Ac%2Bd");
        assert_eq!(quote_plus(" a.b_c-d "), "+a.b_c-d+");
        assert_eq!(quote_plus("é/"), "%C3%A9%2F");
        assert_eq!(quote_plus(""), "");
    }
}
