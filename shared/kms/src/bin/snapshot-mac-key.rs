//! Set-up and rotation of the snapshot MAC key (docs/security.md#snapshot-authentication):
//!
//!   snapshot-mac-key create --id k1                 a new KMS key and a data key under it
//!   snapshot-mac-key generate --kms-key ARN --id k2 a new data key under an existing KMS key
//!
//! Prints the template parameters (`SnapshotMacKmsKeyArn`, and the `keyId=ciphertext` entry to
//! put first in `SnapshotMacKeys`). Only the encrypted data key is printed; the plaintext never
//! leaves KMS here. Uses the default AWS configuration (`AWS_ENDPOINT_URL` for the emulator).

use anyhow::{bail, Context};
use aws_config::BehaviorVersion;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(id) = flag("--id") else {
        bail!("usage: snapshot-mac-key create --id ID | generate --kms-key ARN --id ID");
    };
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let (arn, key) = match args.first().map(String::as_str) {
        Some("create") => {
            let (arn, key, _) = snapshot_kms::set_up_keys(&kms, &id)
                .await
                .context("creating the MAC key")?;
            (arn, key)
        }
        Some("generate") => {
            let Some(arn) = flag("--kms-key") else {
                bail!("generate needs --kms-key ARN");
            };
            let key = snapshot_kms::generate_key(&kms, &arn, &id)
                .await
                .context("generating the data key")?;
            (arn, key)
        }
        _ => bail!("usage: snapshot-mac-key create --id ID | generate --kms-key ARN --id ID"),
    };
    println!("SnapshotMacKmsKeyArn={arn}");
    println!("SnapshotMacKeys={}", key.to_entry());
    Ok(())
}
