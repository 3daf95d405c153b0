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

    /// An assigned ISO 3166-1 alpha-2 code written in capitals, as rules,
    /// overlays and catalogues must give it; else what is wrong with `s`,
    /// with a hint for the usual mistakes ("UK", "EL", "EU").
    pub fn parse_assigned(s: &str) -> Result<Self, String> {
        match Self::parse(s).filter(|c| c.is_assigned()) {
            Some(c) if s.bytes().all(|b| b.is_ascii_uppercase()) => Ok(c),
            Some(c) => Err(format!("country code \"{s}\": write it in capitals, \"{c}\"")),
            None => {
                let hint = match s.to_ascii_uppercase().as_str() {
                    "UK" => " (the United Kingdom is GB)",
                    "EL" => " (Greece is GR)",
                    "EU" => " (the EU is not a country: list its members)",
                    _ => "",
                };
                Err(format!("unknown country code \"{s}\": not an ISO 3166-1 alpha-2 code{hint}"))
            }
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

    /// Its place among the 676 two-letter codes.
    fn index(self) -> usize {
        usize::from(self.0[0].wrapping_sub(b'A')) * 26 + usize::from(self.0[1].wrapping_sub(b'A'))
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

/// `#[serde(deserialize_with)]` for codes a person writes (overlays,
/// catalogues): [`CountryCode::parse_assigned`], so that "UK" fails with
/// its place in the file instead of never matching a rule. Data read from
/// feeds and databases keeps the shape-only [`serde::Deserialize`].
pub(crate) mod assigned {
    use serde::Deserialize;

    use super::CountryCode;

    pub fn required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CountryCode, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CountryCode::parse_assigned(&s).map_err(serde::de::Error::custom)
    }

    pub fn optional<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<CountryCode>, D::Error> {
        required(d).map(Some)
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
    fn assigned_codes_in_capitals_only() {
        assert_eq!(CountryCode::parse_assigned("GB").unwrap().as_str(), "GB");
        assert_eq!(
            CountryCode::parse_assigned("UK").unwrap_err(),
            "unknown country code \"UK\": not an ISO 3166-1 alpha-2 code (the United Kingdom is GB)"
        );
        assert_eq!(
            CountryCode::parse_assigned("gb").unwrap_err(),
            "country code \"gb\": write it in capitals, \"GB\""
        );
        assert!(CountryCode::parse_assigned("XX").unwrap_err().starts_with("unknown country code"));
        assert!(CountryCode::parse_assigned("EU").unwrap_err().ends_with("list its members)"));
    }

    #[test]
    fn parses_two_letters_only() {
        assert_eq!(CountryCode::parse("cn").unwrap().as_str(), "CN");
        assert!(CountryCode::parse("CHN").is_none());
        assert!(CountryCode::parse("C1").is_none());
        assert!(CountryCode::parse("").is_none());
    }
}

/// Country codes as a rule lists them, in its order, with a bit per code
/// for the test every flow makes: a rule may list most of the world (the
/// EU pack's third countries are 196), and was scanned for each flow.
#[derive(Clone, PartialEq, Eq)]
pub struct CountryList {
    listed: Vec<CountryCode>,
    bits: [u64; 11],
}

impl CountryList {
    pub fn contains(&self, c: &CountryCode) -> bool {
        let i = c.index();
        self.bits.get(i / 64).is_some_and(|word| word & (1 << (i % 64)) != 0)
    }
}

impl From<Vec<CountryCode>> for CountryList {
    fn from(listed: Vec<CountryCode>) -> Self {
        let mut bits = [0u64; 11];
        for c in &listed {
            let i = c.index();
            if let Some(word) = bits.get_mut(i / 64) {
                *word |= 1 << (i % 64);
            }
        }
        CountryList { listed, bits }
    }
}

impl std::ops::Deref for CountryList {
    type Target = [CountryCode];

    fn deref(&self) -> &[CountryCode] {
        &self.listed
    }
}

impl fmt::Debug for CountryList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.listed).finish()
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    /// Every code, listed or not, is told apart: the bits say what the
    /// list says.
    #[test]
    fn a_list_contains_exactly_its_codes() {
        let all: Vec<CountryCode> =
            (b'A'..=b'Z').flat_map(|a| (b'A'..=b'Z').map(move |b| CountryCode([a, b]))).collect();
        let listed: Vec<CountryCode> = all.iter().copied().step_by(7).collect();
        let list = CountryList::from(listed.clone());
        for c in &all {
            assert_eq!(list.contains(c), listed.contains(c), "{c}");
        }
        assert_eq!(&list[..], &listed[..]);
    }
}
