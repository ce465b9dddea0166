//! `mailpki kms attributes get`.

use anyhow::{Context, Result, bail};
use mailpki_store::write_private_file;

use crate::args::AttributesGetArgs;
use crate::commands::{Ctx, select};

pub(crate) fn get(ctx: &Ctx, args: &AttributesGetArgs) -> Result<()> {
    let kms = ctx.kms()?;
    let uid = select(&kms, &args.object)?;
    let attributes = kms.attributes(&uid)?;
    let mut value = serde_json::to_value(&attributes)?;
    if !args.attributes.is_empty()
        && let Some(all) = value.as_object()
    {
        let mut picked = serde_json::Map::new();
        for name in &args.attributes {
            // Attributes the object does not have (an absent link, say) are left out.
            if let Some((key, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                picked.insert(key.clone(), v.clone());
            } else if !is_known_attribute(name) {
                bail!("unknown attribute `{name}`");
            }
        }
        value = serde_json::Value::Object(picked);
    }
    match &args.output_file {
        Some(path) => {
            let text = serde_json::to_string_pretty(&value)?;
            write_private_file(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            ctx.printer.print(
                format!("attributes of `{uid}` written to {}", path.display()),
                &serde_json::json!({ "unique_identifier": uid, "file": path }),
            )
        }
        None => ctx.printer.json(&value),
    }
}

fn is_known_attribute(name: &str) -> bool {
    const OPTIONAL: &[&str] = &[
        "cryptographic_algorithm",
        "cryptographic_length",
        "spki_sha256",
        "revocation_reason",
        "certificate_subject",
        "certificate_issuer",
        "certificate_serial_number",
        "certificate_not_before",
        "certificate_not_after",
        "certificate_sha256_fingerprint",
        "certificate_is_ca",
    ];
    OPTIONAL.iter().any(|k| k.eq_ignore_ascii_case(name))
        || name.parse::<mailpki_store::LinkType>().is_ok()
}
