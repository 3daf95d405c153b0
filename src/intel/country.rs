use std::fmt;

use serde::Serialize;

use super::iso3166::COUNTRIES;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses two ASCII letters (either case). Shape only: whether the code
    /// is assigned is the policy stage's question.
    pub fn parse(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// Is the code assigned in ISO 3166-1 (not merely two letters)?
    pub fn is_assigned(&self) -> bool {
        self.name().is_some()
    }

    /// The short English name of an assigned code.
    pub fn name(&self) -> Option<&'static str> {
        let code = self.as_str();
        COUNTRIES.binary_search_by(|(c, _)| (*c).cmp(code)).ok().map(|i| COUNTRIES[i].1)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CountryCode::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("'{s}' is not a two-letter ISO 3166-1 country code"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_assigned_codes() {
        assert_eq!(CountryCode::parse("cn").and_then(|c| c.name()), Some("China"));
        assert!(CountryCode::parse("GB").is_some_and(|c| c.is_assigned()));
        assert!(!CountryCode::parse("UK").is_some_and(|c| c.is_assigned()));
        assert!(super::COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn parses_two_letters_only() {
        assert_eq!(CountryCode::parse("cn").unwrap().as_str(), "CN");
        assert!(CountryCode::parse("CHN").is_none());
        assert!(CountryCode::parse("C1").is_none());
        assert!(CountryCode::parse("").is_none());
    }
}
