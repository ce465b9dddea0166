//! Certificate authorities made with the `openssl` command line at test time.

use std::path::{Path, PathBuf};

use crate::openssl;

/// A two-level CA made with the openssl CLI: root → issuing intermediate, the way an
/// organization sets up its S/MIME PKI. File names are relative to `dir`.
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub const PASSWORD: &'static str = "correct horse battery staple";

    /// Makes `root.pem`/`root.key`, `issuing.pem`/`issuing.key` (PKCS#8 PEM) and `chain.pem`
    /// (issuing then root) in `dir`, with RSA keys of `algorithm` (`rsa` or `ec`).
    pub fn create(dir: &Path) -> Self {
        Self::create_with(dir, "rsa")
    }

    pub fn create_with(dir: &Path, algorithm: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let keyopt: &[&str] = match algorithm {
            "ec" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-newkey", "rsa:2048"],
        };
        let run = |args: &[&str]| openssl(dir, args);
        run(&[
            &["req", "-x509", "-nodes"][..],
            keyopt,
            &[
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "3650",
                "-subj",
                "/C=FR/O=Test Org/CN=Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[
            &["req", "-nodes"][..],
            keyopt,
            &[
                "-keyout",
                "issuing.key",
                "-out",
                "issuing.csr",
                "-subj",
                "/C=FR/O=Test Org/CN=Test Issuing CA",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("issuing.ext"),
            "basicConstraints=critical,CA:TRUE,pathlen:0\n\
             keyUsage=critical,keyCertSign,cRLSign\n\
             extendedKeyUsage=emailProtection\n\
             subjectKeyIdentifier=hash\n\
             authorityKeyIdentifier=keyid\n\
             crlDistributionPoints=URI:http://pki.example.com/root.crl\n",
        )
        .unwrap();
        let pki = Self {
            dir: dir.to_owned(),
        };
        pki.sign_issuing("issuing.pem", 1825);
        let mut chain = std::fs::read(dir.join("issuing.pem")).unwrap();
        chain.extend(std::fs::read(dir.join("root.pem")).unwrap());
        std::fs::write(dir.join("chain.pem"), chain).unwrap();
        pki
    }

    /// (Re-)signs the issuing CA's request with the root into `out`, valid for `days`.
    pub fn sign_issuing(&self, out: &str, days: u32) {
        let days = days.to_string();
        openssl(
            &self.dir,
            [
                "x509",
                "-req",
                "-in",
                "issuing.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-out",
                out,
                "-days",
                &days,
                "-extfile",
                "issuing.ext",
            ],
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Exports the issuing CA (key, certificate, root) as PKCS#12. `profile` is `modern`
    /// (OpenSSL 3's AES-256/PBKDF2), `legacy` (RC2-40 + 3DES, as old OpenSSL and Windows
    /// write) or `3des` (3DES for both, SHA-1 MAC). Returns the file's path.
    pub fn pkcs12(&self, name: &str, profile: &str) -> PathBuf {
        let extra: &[&str] = match profile {
            "legacy" => &["-legacy"],
            "3des" => &[
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
            _ => &[],
        };
        self.pkcs12_with(name, Self::PASSWORD, extra)
    }

    /// Exports the issuing CA as PKCS#12 with `password` and more `openssl pkcs12` options.
    pub fn pkcs12_with(&self, name: &str, password: &str, extra: &[&str]) -> PathBuf {
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "issuing.key",
            "-in",
            "issuing.pem",
            "-certfile",
            "root.pem",
            "-name",
            "Test Issuing CA",
            "-out",
            name,
            "-passout",
            &pass,
        ];
        args.extend(extra);
        openssl(&self.dir, &args);
        self.path(name)
    }

    /// Signs a leaf for `subject` with the issuing CA using the openssl CLI (to make the
    /// deliberately bad certificates the linter must catch). `ext` is an extension file body;
    /// `key_args` the `req` key options; `extra` more `x509 -req` options. Returns the PEM path.
    pub fn openssl_leaf(
        &self,
        name: &str,
        subject: &str,
        ext: &str,
        key_args: &[&str],
        extra: &[&str],
    ) -> PathBuf {
        let ext_file = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext_file), ext).unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec![
            "req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ];
        req.extend(key_args);
        openssl(&self.dir, &req);
        let mut x509 = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "issuing.pem",
            "-CAkey",
            "issuing.key",
            "-CAcreateserial",
            "-extfile",
            &ext_file,
            "-out",
            &pem,
        ];
        if !extra.contains(&"-days") {
            x509.extend(["-days", "365"]);
        }
        x509.extend(extra);
        openssl(&self.dir, &x509);
        self.path(&pem)
    }

    /// The issuing key's first RSA prime as raw bytes: any encoding of the key contains it.
    pub fn issuing_key_prime(&self) -> Vec<u8> {
        let text = openssl(&self.dir, ["rsa", "-in", "issuing.key", "-noout", "-text"]);
        let text = String::from_utf8(text).unwrap();
        let start = text.find("prime1:").expect("an RSA key") + "prime1:".len();
        let end = start + text[start..].find("prime2:").unwrap();
        let hex: String = text[start..end]
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        // openssl prints a leading 00 when the top bit is set; the raw integer lacks it.
        bytes.into_iter().skip_while(|b| *b == 0).collect()
    }
}
