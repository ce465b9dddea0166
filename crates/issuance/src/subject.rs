//! Subject names as administrators write them, parsed into a type that can only hold a valid
//! name: `C=FR, ST=IdF, O=Org, CN=user@org.com, emailAddress=user@org.com` (the order written
//! is the order in the certificate, as with Cosmian and `openssl -subj`), the slash form
//! `/C=FR/O=Org/CN=user@org.com`, and RFC 4514 escapes (`\,`, `\+`, `\"`, `\\`, `\2C`, quoted
//! values) in either.

use std::fmt;
use std::str::FromStr;

use openssl::x509::X509Name;

use crate::error::{IssuanceError, Result};

/// An email address, checked enough to be a mailbox Google and the S/MIME BR accept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as Google keys its users: lowercased whole (Gmail's user IDs and CSE
    /// identities ignore case in the local part too). Tags name users this way, so a search
    /// finds them however the CSV spelled the address.
    #[must_use]
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The comparison form: the domain is case-insensitive, the local part is kept.
    #[must_use]
    pub fn normalized(&self) -> String {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
            None => self.0.clone(),
        }
    }
}

impl FromStr for EmailAddress {
    type Err = IssuanceError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &'static str| IssuanceError::InvalidEmail {
            email: s.to_owned(),
            reason,
        };
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("it has no `@`"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("the part before `@` must have 1 to 64 characters"));
        }
        if !s.is_ascii() {
            return Err(bad("internationalized addresses are not supported"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(bad("it contains spaces, controls or angle brackets"));
        }
        // RFC 5321's dot-atom: what mail systems and Google take unquoted. A second `@`
        // (`x@x.com@y.com`) would make a certificate whose address different readers split
        // differently.
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        if local.contains('@') {
            return Err(bad("it has more than one `@`"));
        }
        if local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.chars().all(|c| c == '.' || atext(c))
        {
            return Err(bad(
                "the part before `@` may hold letters, digits, dots (not first, last or doubled) and !#$%&'*+/=?^_`{|}~- only",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        {
            return Err(bad("the domain must be a dotted host name"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Attribute types of a distinguished name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeType {
    Known(KnownAttribute),
    /// Given as a dotted OID.
    Oid(String),
}

/// The attribute types with names: (short name, long names, OID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KnownAttribute {
    Country,
    State,
    Locality,
    Organization,
    OrganizationalUnit,
    CommonName,
    EmailAddress,
    SerialNumber,
    Surname,
    GivenName,
    Title,
    Pseudonym,
    OrganizationIdentifier,
    Street,
    PostalCode,
    DomainComponent,
    UserId,
}

impl KnownAttribute {
    const ALL: &'static [Self] = &[
        Self::Country,
        Self::State,
        Self::Locality,
        Self::Organization,
        Self::OrganizationalUnit,
        Self::CommonName,
        Self::EmailAddress,
        Self::SerialNumber,
        Self::Surname,
        Self::GivenName,
        Self::Title,
        Self::Pseudonym,
        Self::OrganizationIdentifier,
        Self::Street,
        Self::PostalCode,
        Self::DomainComponent,
        Self::UserId,
    ];

    /// The name printed, then the other names accepted.
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Country => &["C", "countryName"],
            Self::State => &["ST", "S", "stateOrProvinceName"],
            Self::Locality => &["L", "localityName"],
            Self::Organization => &["O", "organizationName"],
            Self::OrganizationalUnit => &["OU", "organizationalUnitName"],
            Self::CommonName => &["CN", "commonName"],
            Self::EmailAddress => &["emailAddress", "E", "EMAIL"],
            Self::SerialNumber => &["serialNumber"],
            Self::Surname => &["SN", "surname"],
            Self::GivenName => &["GN", "givenName", "G"],
            Self::Title => &["title", "T"],
            Self::Pseudonym => &["pseudonym"],
            Self::OrganizationIdentifier => &["organizationIdentifier"],
            Self::Street => &["street", "streetAddress"],
            Self::PostalCode => &["postalCode"],
            Self::DomainComponent => &["DC", "domainComponent"],
            Self::UserId => &["UID", "userId"],
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        self.names()[0]
    }

    #[must_use]
    pub fn oid(self) -> &'static str {
        match self {
            Self::Country => "2.5.4.6",
            Self::State => "2.5.4.8",
            Self::Locality => "2.5.4.7",
            Self::Organization => "2.5.4.10",
            Self::OrganizationalUnit => "2.5.4.11",
            Self::CommonName => "2.5.4.3",
            Self::EmailAddress => "1.2.840.113549.1.9.1",
            Self::SerialNumber => "2.5.4.5",
            Self::Surname => "2.5.4.4",
            Self::GivenName => "2.5.4.42",
            Self::Title => "2.5.4.12",
            Self::Pseudonym => "2.5.4.65",
            Self::OrganizationIdentifier => "2.5.4.97",
            Self::Street => "2.5.4.9",
            Self::PostalCode => "2.5.4.17",
            Self::DomainComponent => "0.9.2342.19200300.100.1.25",
            Self::UserId => "0.9.2342.19200300.100.1.1",
        }
    }

    fn lookup(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    fn all_names() -> String {
        Self::ALL
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One `type=value` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    pub attribute: AttributeType,
    pub value: String,
}

impl Ava {
    #[must_use]
    pub fn is(&self, known: KnownAttribute) -> bool {
        self.attribute == AttributeType::Known(known)
    }

    fn type_name(&self) -> &str {
        match &self.attribute {
            AttributeType::Known(k) => k.name(),
            AttributeType::Oid(oid) => oid,
        }
    }
}

/// Which CA/Browser Forum S/MIME subject profile a subject fits (SBR §7.1.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationType {
    /// Only the mailbox: commonName (the address), emailAddress, serialNumber.
    Mailbox,
    /// An organization's mailbox: organizationName with no personal names.
    Organization,
    /// A person within an organization: organizationName and personal names.
    Sponsor,
    /// A person: personal names without an organization.
    Individual,
}

impl ValidationType {
    /// The middle arc of the CA/B Forum policy OID `2.23.140.1.5.<x>.<generation>`.
    #[must_use]
    pub fn policy_arc(self) -> u64 {
        match self {
            Self::Mailbox => 1,
            Self::Organization => 2,
            Self::Sponsor => 3,
            Self::Individual => 4,
        }
    }

    /// The profile a subject fits: only mailbox attributes, else by whether it names an
    /// organization (O or OU) and a person (givenName, surname or pseudonym).
    #[must_use]
    pub fn classify(only_mailbox: bool, organization: bool, personal: bool) -> Self {
        match (only_mailbox, organization, personal) {
            (true, _, _) => Self::Mailbox,
            (false, true, true) => Self::Sponsor,
            (false, false, true) => Self::Individual,
            // An organization, or only locality or country: closest to an organization's.
            (false, _, false) => Self::Organization,
        }
    }

    #[must_use]
    pub fn from_policy_arc(arc: u64) -> Option<Self> {
        match arc {
            1 => Some(Self::Mailbox),
            2 => Some(Self::Organization),
            3 => Some(Self::Sponsor),
            4 => Some(Self::Individual),
            _ => None,
        }
    }
}

impl fmt::Display for ValidationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mailbox => "mailbox-validated",
            Self::Organization => "organization-validated",
            Self::Sponsor => "sponsor-validated",
            Self::Individual => "individual-validated",
        })
    }
}

/// A parsed distinguished name: relative distinguished names in certificate order, each one
/// or more attribute-value pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectName {
    rdns: Vec<Vec<Ava>>,
}

impl SubjectName {
    /// The subject of a plain mailbox certificate: `CN=<email>, emailAddress=<email>`.
    #[must_use]
    pub fn mailbox(email: &EmailAddress) -> Self {
        let ava = |k| Ava {
            attribute: AttributeType::Known(k),
            value: email.to_string(),
        };
        Self {
            rdns: vec![
                vec![ava(KnownAttribute::CommonName)],
                vec![ava(KnownAttribute::EmailAddress)],
            ],
        }
    }

    pub fn avas(&self) -> impl Iterator<Item = &Ava> {
        self.rdns.iter().flatten()
    }

    fn values(&self, known: KnownAttribute) -> impl Iterator<Item = &str> {
        self.avas()
            .filter(move |a| a.is(known))
            .map(|a| a.value.as_str())
    }

    #[must_use]
    pub fn has(&self, known: KnownAttribute) -> bool {
        self.values(known).next().is_some()
    }

    /// Every address in the subject: emailAddress values, and a commonName that is one.
    #[must_use]
    pub fn emails(&self) -> Vec<EmailAddress> {
        let mut out: Vec<EmailAddress> = Vec::new();
        for value in self.values(KnownAttribute::EmailAddress).chain(
            self.values(KnownAttribute::CommonName)
                .filter(|v| v.contains('@')),
        ) {
            if let Ok(email) = value.parse::<EmailAddress>()
                && !out.iter().any(|e| e.normalized() == email.normalized())
            {
                out.push(email);
            }
        }
        out
    }

    #[must_use]
    pub fn validation_type(&self) -> ValidationType {
        use KnownAttribute as K;
        let personal = self.has(K::GivenName) || self.has(K::Surname) || self.has(K::Pseudonym);
        let organization = self.has(K::Organization) || self.has(K::OrganizationalUnit);
        let only_mailbox = self
            .avas()
            .all(|a| a.is(K::CommonName) || a.is(K::EmailAddress) || a.is(K::SerialNumber));
        ValidationType::classify(only_mailbox, organization, personal)
    }

    /// The DER `Name`. Strings get the types RFC 5280 and the S/MIME BR ask for:
    /// PrintableString for the country and serial number, IA5String for addresses and domain
    /// components, UTF8String otherwise.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        for ava in self.avas() {
            if matches!(
                ava.attribute,
                AttributeType::Known(KnownAttribute::SerialNumber | KnownAttribute::Country)
            ) && !ava.value.chars().all(is_printable)
            {
                return Err(IssuanceError::InvalidSubject {
                    position: 0,
                    reason: format!(
                        "`{}={}` may only hold letters, digits, spaces and '()+,-./:=",
                        ava.type_name(),
                        ava.value
                    ),
                });
            }
        }
        if let Some(ava) = self
            .avas()
            .find(|a| a.is(KnownAttribute::DomainComponent) && !a.value.is_ascii())
        {
            return Err(IssuanceError::InvalidSubject {
                position: 0,
                reason: format!("`DC={}` must be ASCII", ava.value),
            });
        }
        let oids = self
            .avas()
            .map(|a| {
                let text = match &a.attribute {
                    AttributeType::Known(k) => k.oid(),
                    AttributeType::Oid(o) => o.as_str(),
                };
                crate::encode::encodable_oid(text).ok_or_else(|| IssuanceError::InvalidSubject {
                    position: 0,
                    reason: format!("`{text}` is not a valid OID"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut oids = oids.iter();
        Ok(yasna::construct_der(|w| {
            w.write_sequence_of(|w| {
                for rdn in &self.rdns {
                    w.next().write_set_of(|w| {
                        for ava in rdn {
                            let Some(oid) = oids.next() else { return };
                            w.next().write_sequence(|w| {
                                w.next().write_oid(oid);
                                let value = ava.value.as_str();
                                match ava.attribute {
                                    AttributeType::Known(
                                        KnownAttribute::Country | KnownAttribute::SerialNumber,
                                    ) => w.next().write_printable_string(value),
                                    AttributeType::Known(
                                        KnownAttribute::EmailAddress
                                        | KnownAttribute::DomainComponent,
                                    ) => w.next().write_ia5_string(value),
                                    _ => w.next().write_utf8_string(value),
                                }
                            });
                        }
                    });
                }
            });
        }))
    }

    pub fn to_x509_name(&self) -> Result<X509Name> {
        X509Name::from_der(&self.to_der()?).map_err(|e| IssuanceError::Crypto {
            context: "building a name",
            source: e,
        })
    }
}

/// ASN.1 PrintableString's alphabet, less `?`, which the DER writer refuses.
fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=".contains(c)
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rdns: Vec<String> = self
            .rdns
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.type_name(), escape(&a.value)))
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        f.write_str(&rdns.join(", "))
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i + 1 == value.chars().count());
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || edge_space
            || (i == 0 && c == '#')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl FromStr for SubjectName {
    type Err = IssuanceError;

    fn from_str(input: &str) -> Result<Self> {
        let trimmed = input.trim_start();
        let offset = input.len() - trimmed.len();
        let (separator, body, base) = match trimmed.strip_prefix('/') {
            Some(rest) => ('/', rest, offset + 1),
            None => (',', trimmed, offset),
        };
        let mut rdns = Vec::new();
        for (start, rdn_text) in split_unescaped(body, separator, base)? {
            if rdn_text.trim().is_empty() {
                // `/C=FR/` and `C=FR, ` end with an empty piece: allowed at the end only.
                if start + rdn_text.len() >= input.len() {
                    continue;
                }
                return Err(IssuanceError::InvalidSubject {
                    position: start,
                    reason: "empty name component".to_owned(),
                });
            }
            let mut rdn = Vec::new();
            for (ava_start, ava_text) in split_unescaped(rdn_text, '+', start)? {
                rdn.push(parse_ava(ava_text, ava_start)?);
            }
            rdns.push(rdn);
        }
        if rdns.is_empty() {
            return Err(IssuanceError::InvalidSubject {
                position: 0,
                reason: "the subject is empty".to_owned(),
            });
        }
        Ok(Self { rdns })
    }
}

/// Splits on `sep` outside escapes and quotes; yields (absolute position, piece).
fn split_unescaped(text: &str, sep: char, base: usize) -> Result<Vec<(usize, &str)>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            pieces.push((base + start, &text[start..i]));
            start = i + c.len_utf8();
        }
    }
    if escaped {
        return Err(IssuanceError::InvalidSubject {
            position: base + text.len(),
            reason: "the subject ends with a lone backslash".to_owned(),
        });
    }
    if quoted {
        return Err(IssuanceError::InvalidSubject {
            position: base + text.len(),
            reason: "a quoted value is not closed".to_owned(),
        });
    }
    pieces.push((base + start, &text[start..]));
    Ok(pieces)
}

fn parse_ava(text: &str, position: usize) -> Result<Ava> {
    let err = |reason: String| IssuanceError::InvalidSubject { position, reason };
    let (key, raw) = text
        .split_once('=')
        .ok_or_else(|| err(format!("`{}` has no `=`", text.trim())))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(err("an attribute name is missing before `=`".to_owned()));
    }
    let attribute = if let Some(known) = KnownAttribute::lookup(key) {
        AttributeType::Known(known)
    } else if is_dotted_oid(key) {
        AttributeType::Oid(key.to_owned())
    } else {
        return Err(err(format!(
            "unknown attribute `{key}` (known: {}, or a dotted OID)",
            KnownAttribute::all_names()
        )));
    };
    let value = unescape(trim_value(raw), position)?;
    if value.is_empty() {
        return Err(err(format!("`{key}` has an empty value")));
    }
    if value.chars().any(char::is_control) {
        return Err(err(format!("`{key}` contains control characters")));
    }
    match &attribute {
        AttributeType::Known(KnownAttribute::Country)
            if !(value.len() == 2 && value.chars().all(|c| c.is_ascii_uppercase())) =>
        {
            return Err(err(format!(
                "`C={value}`: the country is a two-letter upper-case ISO 3166 code, like FR"
            )));
        }
        AttributeType::Known(KnownAttribute::EmailAddress) => {
            value.parse::<EmailAddress>()?;
        }
        _ => {}
    }
    if value.chars().count() > 256 {
        return Err(err(format!("`{key}` is longer than 256 characters")));
    }
    Ok(Ava { attribute, value })
}

/// Digits and dots only, and an OID DER can encode (a first arc of 5 cannot be).
fn is_dotted_oid(s: &str) -> bool {
    s.split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && crate::encode::encodable_oid(s).is_some()
}

/// Surrounding (ASCII) white space off, but not a trailing space escaped as `\ ` (RFC 4514 writes a
/// value's trailing space that way), which belongs to the value.
fn trim_value(raw: &str) -> &str {
    // ASCII white space only: a no-break space is part of the value, as the printer keeps it.
    let value = raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let mut end = value
        .trim_end_matches(|c: char| c.is_ascii_whitespace())
        .len();
    let backslashes = value.as_bytes()[..end]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    if backslashes % 2 == 1
        && let Some(escaped) = value[end..].chars().next()
    {
        end += escaped.len_utf8();
    }
    &value[..end]
}

/// Removes quotes and RFC 4514 escapes (`\,` and `\2C` alike).
fn unescape(raw: &str, position: usize) -> Result<String> {
    let err = |reason: &str| IssuanceError::InvalidSubject {
        position,
        reason: reason.to_owned(),
    };
    if raw.starts_with('#') {
        return Err(err(
            "hex-encoded (`#...`) values are not supported: write the text",
        ));
    }
    let inner = match raw.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| err("a quoted value is not closed"))?,
        None => raw,
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(next) = chars.next() else {
            return Err(err("a value ends with a lone backslash"));
        };
        if next.is_ascii_hexdigit() {
            let low = chars
                .next()
                .filter(char::is_ascii_hexdigit)
                .ok_or_else(|| {
                    err("`\\` must be followed by a special character or two hex digits")
                })?;
            let byte = u8::from_str_radix(&format!("{next}{low}"), 16)
                .map_err(|_| err("invalid hex escape"))?;
            bytes.push(byte);
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(bytes).map_err(|_| err("hex escapes do not form UTF-8 text"))
}

#[cfg(test)]
mod tests;
