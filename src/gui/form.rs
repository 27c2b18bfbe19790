//! The connect form's data: what a person typed (address, port, CA, name, client certificate),
//! its defaults, and the options it gives the transport. No drawing (that is `gui::app`).

use std::path::{Path, PathBuf};

use crate::client::ClientOptions;
use crate::proto::{DEFAULT_HOST, DEFAULT_PORT};

/// What the connect form holds, as typed.
#[derive(Debug, Clone)]
pub struct ConnectForm {
    pub host: String,
    pub port: String,
    /// The CA to trust besides the public roots; empty for the public roots only.
    pub ca: String,
    pub name: String,
    pub cert: String,
    pub key: String,
    pub no_tls: bool,
}

impl Default for ConnectForm {
    /// The terminal client's defaults: 127.0.0.1, 5000, and `certs/ca.pem` when it exists.
    fn default() -> ConnectForm {
        let ca = Path::new(crate::tls::CA_FILE);
        ConnectForm {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT.to_string(),
            ca: if ca.exists() {
                crate::tls::CA_FILE.to_string()
            } else {
                String::new()
            },
            name: String::new(),
            cert: String::new(),
            key: String::new(),
            no_tls: false,
        }
    }
}

impl ConnectForm {
    /// The form filled from the terminal client's options (`gui HOST PORT --ca ... --name ...`).
    pub fn from_options(o: &ClientOptions) -> ConnectForm {
        let mut form = ConnectForm::default();
        let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        if let Some(host) = &o.host {
            form.host = host.clone();
        }
        if let Some(port) = o.port {
            form.port = port.to_string();
        }
        form.ca = text(&o.ca).unwrap_or(form.ca);
        form.cert = text(&o.cert).unwrap_or_default();
        form.key = text(&o.key).unwrap_or_default();
        form.name = o.name.clone().unwrap_or_default();
        form.no_tls = o.no_tls;
        form
    }

    /// Host, port and options for the transport, or the sentence that says what to fix.
    pub(super) fn target(&self) -> Result<(String, u16, ClientOptions), String> {
        let host = crate::client::host_of(self.host.trim());
        if host.is_empty() {
            return Err("Enter the server's address.".into());
        }
        let port = match self.port.trim().parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err("The port must be a number from 1 to 65535.".into()),
        };
        let path = |text: &str| {
            Some(text.trim())
                .filter(|t| !t.is_empty())
                .map(PathBuf::from)
        };
        let options = ClientOptions {
            // Empty is the public roots only (an empty path), never a hidden default.
            ca: Some(PathBuf::from(self.ca.trim())),
            cert: path(&self.cert),
            key: path(&self.key),
            no_tls: self.no_tls,
            name: Some(self.name.trim().to_string()).filter(|n| !n.is_empty()),
            ..ClientOptions::default()
        };
        if options.cert.is_some() != options.key.is_some() {
            return Err(
                "A client certificate needs its key file, and a key its certificate.".into(),
            );
        }
        Ok((host, port, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21, defect 3: the CA field is what the window trusts. Empty is the public roots
    /// only (an empty path, which the transport reads that way), never `certs/ca.pem` behind
    /// the person's back.
    #[test]
    fn the_ca_field_is_what_is_trusted() {
        let mut form = ConnectForm {
            ca: String::new(),
            ..ConnectForm::default()
        };
        let (_, _, options) = form.target().unwrap();
        assert_eq!(options.ca, Some(PathBuf::new()));
        form.ca = " certs/other.pem ".into();
        let (_, _, options) = form.target().unwrap();
        assert_eq!(options.ca, Some(PathBuf::from("certs/other.pem")));
    }
}
