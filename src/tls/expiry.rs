//! Certificates in time (SPEC "Trust at the edges"): a server certificate that has expired or is
//! not valid yet is refused at SIGHUP, and one that expires within 14 days (or already has) is
//! warned of at start and at every reload, once on stderr and once in the log
//! (`event=cert-expiry`). Times are Unix seconds, as [`Validity`] holds them.

use rustls::pki_types::CertificateDer;

use super::error::utc;
use super::{Validity, subject, validity};

/// How long before its notAfter a certificate is warned of: 14 days, in seconds.
pub const WARN_BEFORE_SECS: i64 = 14 * 86_400;

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `Ok` when `now` lies within the validity period (RFC 5280 4.1.2.5: both ends included), else
/// why not: `expired on <date>` or `not valid before <date>`.
pub fn check_in_time(validity: &Validity, now: i64) -> Result<(), String> {
    if now > validity.not_after {
        Err(format!(
            "the certificate expired on {}",
            utc(validity.not_after)
        ))
    } else if now < validity.not_before {
        Err(format!(
            "the certificate is not valid before {}",
            utc(validity.not_before)
        ))
    } else {
        Ok(())
    }
}

/// A certificate that expires soon, or has: what the warning says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryWarning {
    /// The certificate file, as given.
    pub cert: String,
    /// Its notAfter, in Unix seconds.
    pub not_after: i64,
    /// Whole days left (0 on its last day), negative once it has expired.
    pub days_left: i64,
    /// Its notBefore, when that is still to come (clients that verify refuse it until then).
    pub not_valid_before: Option<i64>,
}

/// When every certificate of `chain` (the server's own first) is valid at once: the latest
/// notBefore and the earliest notAfter, since a client checks each certificate the server sends.
/// With it, the subject of a CA certificate that ends before the server's own, if one does.
/// `None` when the server's own cannot be read; a CA certificate that cannot be read is left out.
pub fn chain_validity(chain: &[CertificateDer<'_>]) -> Option<(Validity, Option<String>)> {
    let (leaf, rest) = chain.split_first()?;
    let mut together = validity(leaf)?;
    let mut ended_by = None;
    for ca in rest {
        let Some(period) = validity(ca) else { continue };
        together.not_before = together.not_before.max(period.not_before);
        if period.not_after < together.not_after {
            together.not_after = period.not_after;
            ended_by = Some(subject(ca).unwrap_or_default());
        }
    }
    Some((together, ended_by))
}

/// The warning for `cert` (a name for messages) when its notAfter is within
/// [`WARN_BEFORE_SECS`] of `now`, or past, or when its notBefore is still to come (at start,
/// where such a certificate is served all the same).
pub fn expiry_warning(cert: &str, validity: &Validity, now: i64) -> Option<ExpiryWarning> {
    let left = validity.not_after - now;
    let early = now < validity.not_before;
    (left <= WARN_BEFORE_SECS || early).then(|| ExpiryWarning {
        cert: cert.to_string(),
        not_after: validity.not_after,
        days_left: left.div_euclid(86_400),
        not_valid_before: early.then_some(validity.not_before),
    })
}

/// Unix seconds as `2026-12-20T00:00:00Z` (before 1970 too).
pub fn utc_date(secs: i64) -> String {
    utc(secs)
}

impl ExpiryWarning {
    /// The date it expires (or expired), as `2026-12-20T00:00:00Z`.
    pub fn date(&self) -> String {
        utc(self.not_after)
    }

    /// The line for stderr (without the program's prefix).
    pub fn sentence(&self) -> String {
        if let Some(not_before) = self.not_valid_before {
            format!(
                "warning: the certificate {} is not valid before {}: clients that verify it refuse it until then (check the certificate, and this machine's clock)",
                self.cert,
                utc(not_before)
            )
        } else if self.days_left < 0 {
            format!(
                "warning: the certificate {} expired on {}: clients that verify it refuse it; renew it, then send SIGHUP",
                self.cert,
                self.date()
            )
        } else {
            format!(
                "warning: the certificate {} expires on {} (in {} days): renew it, then send SIGHUP",
                self.cert,
                self.date(),
                self.days_left
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn valid(from: i64, to: i64) -> Validity {
        Validity {
            not_before: from,
            not_after: to,
        }
    }

    #[test]
    fn dates_before_1970_are_written_as_themselves() {
        // The attack round: a notAfter of 1950 read as year 584554051204, or as 1970.
        assert_eq!(utc_date(-618_105_600), "1950-06-01T00:00:00Z");
        assert!(
            check_in_time(
                &Validity {
                    not_before: -700_000_000,
                    not_after: -618_105_600
                },
                0
            )
            .unwrap_err()
            .ends_with("expired on 1950-06-01T00:00:00Z")
        );
    }

    #[test]
    fn only_a_certificate_within_its_period_is_in_time() {
        let period = valid(10 * DAY, 20 * DAY);
        assert_eq!(check_in_time(&period, 15 * DAY), Ok(()));
        assert_eq!(check_in_time(&period, 10 * DAY), Ok(()));
        assert_eq!(check_in_time(&period, 20 * DAY), Ok(()));
        assert_eq!(
            check_in_time(&period, 20 * DAY + 1),
            Err("the certificate expired on 1970-01-21T00:00:00Z".into())
        );
        assert_eq!(
            check_in_time(&period, 10 * DAY - 1),
            Err("the certificate is not valid before 1970-01-11T00:00:00Z".into())
        );
    }

    #[test]
    fn a_warning_comes_from_fourteen_days_before_the_end() {
        let cert = "certs/server.pem";
        let period = valid(0, 100 * DAY);
        assert_eq!(expiry_warning(cert, &period, 100 * DAY - 15 * DAY), None);
        let soon = expiry_warning(cert, &period, 100 * DAY - 14 * DAY).unwrap();
        assert_eq!(soon.days_left, 14);
        assert_eq!(
            soon.sentence(),
            "warning: the certificate certs/server.pem expires on 1970-04-11T00:00:00Z (in 14 days): renew it, then send SIGHUP"
        );
        let early = expiry_warning(cert, &valid(10 * DAY, 100 * DAY), 5 * DAY).unwrap();
        assert_eq!(early.not_valid_before, Some(10 * DAY));
        assert!(
            early
                .sentence()
                .contains("is not valid before 1970-01-11T00:00:00Z"),
            "{early:?}"
        );
        assert_eq!(soon.not_valid_before, None);
        let gone = expiry_warning(cert, &period, 100 * DAY + 1).unwrap();
        assert_eq!(gone.days_left, -1);
        assert!(
            gone.sentence().contains("expired on 1970-04-11"),
            "{gone:?}"
        );
    }
}
