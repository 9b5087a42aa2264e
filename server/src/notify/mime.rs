//! Building an email message (RFC 5322 headers, MIME multipart bodies): every body part is
//! base64, so any text or bytes travel through any server unchanged; non-ASCII subjects and
//! file names are encoded as RFC 2047 words and RFC 2231 parameters.
//!
//! Shape: text only is one `text/plain` part; text and HTML are `multipart/alternative`;
//! attachments wrap either in `multipart/mixed`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::smtp::Email;
use crate::time_text::civil_from_days;

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 cut into lines of 76 characters, each ended by CRLF (RFC 2045).
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// A header value safe to send: line breaks become spaces, and anything not plain printable
/// ASCII becomes RFC 2047 encoded words (`=?UTF-8?B?...?=`) of at most 75 characters each.
pub(crate) fn encode_header_text(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.chars().all(|c| (' '..='~').contains(&c)) && !flat.contains("=?") {
        return flat;
    }
    // Each word carries whole characters: 45 bytes of UTF-8 become 60 base64 characters, so
    // a word with its 12 characters of framing stays under 75.
    let mut words = Vec::new();
    let mut current = String::new();
    for c in flat.chars() {
        if current.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(current.as_bytes())));
            current.clear();
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(current.as_bytes())));
    }
    words.join("\r\n ")
}

/// `filename="report.pdf"`, or the RFC 2231 form `filename*=UTF-8''r%C3%A9sum%C3%A9.pdf` for
/// names that are not plain ASCII.
fn filename_parameter(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\');
    if plain {
        return format!("filename=\"{name}\"");
    }
    let mut out = String::from("filename*=UTF-8''");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A MIME type as given, or `application/octet-stream` when it is not one (a type with line
/// breaks could otherwise inject headers).
fn content_type(text: &str) -> &str {
    let ok = !text.is_empty()
        && text.contains('/')
        && text.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !text.contains(['"', '\\']);
    if ok { text } else { "application/octet-stream" }
}

fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{now:x}.{:x}.{n:x}", std::process::id())
}

/// The date in RFC 5322's format: `Fri, 04 Dec 2026 18:40:30 +0000`.
pub(crate) fn rfc5322_date(unix_seconds: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds.div_euclid(86_400);
    let rem = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn text_part(out: &mut String, subtype: &str, text: &str) {
    out.push_str(&format!(
        "Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ));
    out.push_str(&base64_lines(text.as_bytes()));
}

fn body(out: &mut String, email: &Email) {
    match &email.html {
        None => text_part(out, "plain", &email.text),
        Some(html) => {
            let boundary = format!("=_tally_alt_{}", unique());
            out.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
            ));
            out.push_str(&format!("--{boundary}\r\n"));
            text_part(out, "plain", &email.text);
            out.push_str(&format!("--{boundary}\r\n"));
            text_part(out, "html", html);
            out.push_str(&format!("--{boundary}--\r\n"));
        }
    }
}

/// The whole message, headers and body, with CRLF line ends. `from` and `to` are checked
/// addresses.
pub(crate) fn build(from: &str, email: &Email, unix_seconds: i64) -> String {
    let mut out = String::new();
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: {}\r\n", email.to.join(", ")));
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_header_text(&email.subject)
    ));
    out.push_str(&format!("Date: {}\r\n", rfc5322_date(unix_seconds)));
    out.push_str(&format!("Message-ID: <{}@{domain}>\r\n", unique()));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(concat!(
        "X-Mailer: tally/",
        env!("CARGO_PKG_VERSION"),
        "\r\n"
    ));
    if email.attachments.is_empty() {
        body(&mut out, email);
        return out;
    }
    let boundary = format!("=_tally_mixed_{}", unique());
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str("This is a MIME message.\r\n");
    out.push_str(&format!("--{boundary}\r\n"));
    body(&mut out, email);
    for attachment in &email.attachments {
        out.push_str(&format!("--{boundary}\r\n"));
        out.push_str(&format!(
            "Content-Type: {}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; {}\r\n\r\n",
            content_type(&attachment.content_type),
            filename_parameter(&attachment.filename)
        ));
        out.push_str(&base64_lines(&attachment.bytes));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::smtp::Attachment;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn ascii_subjects_stay_plain_and_others_become_encoded_words() {
        assert_eq!(encode_header_text("GPU hot"), "GPU hot");
        assert_eq!(encode_header_text("a\r\nBcc: x"), "a  Bcc: x");
        let encoded = encode_header_text("Température élevée");
        assert_eq!(
            encoded,
            format!("=?UTF-8?B?{}?=", base64("Température élevée".as_bytes()))
        );
        let long = "é".repeat(100);
        let encoded = encode_header_text(&long);
        for word in encoded.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            assert!(word.starts_with("=?UTF-8?B?") && word.ends_with("?="));
        }
    }

    #[test]
    fn dates_follow_rfc_5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_083_200),
            "Tue, 01 Dec 2026 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(951_782_400 + 3661),
            "Tue, 29 Feb 2000 01:01:01 +0000"
        );
    }

    #[test]
    fn text_html_and_attachments_make_mixed_and_alternative_parts() {
        let email = Email {
            to: vec!["ops@example.com".into()],
            subject: "Weekly report".into(),
            text: "plain body".into(),
            html: Some("<p>html body</p>".into()),
            attachments: vec![Attachment {
                filename: "coût.csv".into(),
                content_type: "text/csv".into(),
                bytes: b"a,b\n1,2\n".to_vec(),
            }],
        };
        let message = build("tally@example.com", &email, 0);
        assert!(message.contains("Content-Type: multipart/mixed; boundary="));
        assert!(message.contains("Content-Type: multipart/alternative; boundary="));
        assert!(message.contains(&base64(b"plain body")));
        assert!(message.contains(&base64(b"<p>html body</p>")));
        assert!(message.contains("filename*=UTF-8''co%C3%BBt.csv"));
        assert!(message.contains(&base64(b"a,b\n1,2\n")));
        assert!(message.lines().all(|l| l.len() <= 998));
        assert!(
            !message.replace("\r\n", "").contains('\n'),
            "bare LF in the message"
        );
    }

    #[test]
    fn a_content_type_with_a_line_break_is_replaced() {
        assert_eq!(
            content_type("text/csv\r\nBcc: x"),
            "application/octet-stream"
        );
        assert_eq!(content_type("application/pdf"), "application/pdf");
    }
}
