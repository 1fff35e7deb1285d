//! Parsing of the value notations shared by graphs and nodes: bitrates and rationals.

use std::fmt;

/// A positive rational number, e.g. a frame rate of 30000/1001.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    pub num: i64,
    pub den: i64,
}

impl Rational {
    pub fn new(num: i64, den: i64) -> Self {
        let g = gcd(num.abs(), den.abs()).max(1);
        Rational {
            num: num / g,
            den: den / g,
        }
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Decimal rates users type: the NTSC family maps to its exact fraction
    /// (29.97 → 30000/1001), other values to a fraction over 1000.
    pub fn from_f64(f: f64) -> Option<Rational> {
        if !f.is_finite() || f <= 0.0 {
            return None;
        }
        for base in [24.0, 30.0, 48.0, 60.0, 120.0] {
            let ntsc = base * 1000.0 / 1001.0;
            if (f - ntsc).abs() < 0.006 {
                return Some(Rational::new((base as i64) * 1000, 1001));
            }
        }
        if f.fract() == 0.0 {
            return Some(Rational::new(f as i64, 1));
        }
        Some(Rational::new((f * 1000.0).round() as i64, 1000))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Parses `30`, `29.97` or `30000/1001`.
pub fn parse_rational(text: &str) -> Result<Rational, String> {
    let text = text.trim();
    if let Some((n, d)) = text.split_once('/') {
        let num: i64 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a rational like 30000/1001"))?;
        let den: i64 = d
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a rational like 30000/1001"))?;
        if den <= 0 || num <= 0 {
            return Err(format!("`{text}` must be positive"));
        }
        return Ok(Rational::new(num, den));
    }
    let f: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a rate like 30 or 30000/1001"))?;
    Rational::from_f64(f).ok_or_else(|| format!("`{text}` must be positive"))
}

/// Parses a bitrate in bits per second: `128000`, `128k`, `5M`, `1.5M`, `2G`.
pub fn parse_bitrate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a bitrate like 128k, 5M or 320000"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("`{text}` is not a bitrate like 128k, 5M or 320000"));
    }
    Ok((v * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("128k").unwrap(), 128_000);
        assert_eq!(parse_bitrate("1.5M").unwrap(), 1_500_000);
        assert_eq!(parse_bitrate("320000").unwrap(), 320_000);
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-5M").is_err());
    }

    #[test]
    fn rationals() {
        assert_eq!(
            parse_rational("30000/1001").unwrap(),
            Rational::new(30000, 1001)
        );
        assert_eq!(parse_rational("60").unwrap(), Rational::new(60, 1));
        assert_eq!(parse_rational("59.94").unwrap(), Rational::new(60000, 1001));
        assert_eq!(parse_rational("12.5").unwrap(), Rational::new(25, 2));
        assert!(parse_rational("0").is_err());
        assert!(parse_rational("1/0").is_err());
    }
}
