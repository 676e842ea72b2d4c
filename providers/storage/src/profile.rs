//! Service profiles: which S3 sub-features each S3-compatible service implements, so that a
//! program asking for one the service lacks fails at preview time (in `Handler::check`), naming
//! the service and the field, instead of failing halfway through an apply.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An S3 sub-feature that some services do not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Creating and deleting buckets through the S3 API.
    BucketManagement,
    /// Bucket versioning (`?versioning`).
    Versioning,
    /// CORS rules (`?cors`).
    Cors,
    /// Lifecycle rules (`?lifecycle`).
    Lifecycle,
    /// Lifecycle `NoncurrentVersionExpiration`.
    NoncurrentVersionExpiration,
    /// Lifecycle `AbortIncompleteMultipartUpload`.
    AbortIncompleteMultipartUpload,
    /// Public access block (`?publicAccessBlock`).
    PublicAccessBlock,
    /// Bucket tags (`?tagging`).
    BucketTagging,
    /// `x-amz-checksum-sha256` on object uploads (stored and verified by the service).
    ChecksumSha256,
}

impl Feature {
    /// A short description, as shown in errors.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::BucketManagement => "creating and deleting buckets through the S3 API",
            Feature::Versioning => "bucket versioning",
            Feature::Cors => "bucket CORS rules",
            Feature::Lifecycle => "bucket lifecycle rules",
            Feature::NoncurrentVersionExpiration => "lifecycle expiration of noncurrent versions",
            Feature::AbortIncompleteMultipartUpload => "lifecycle abort of incomplete multipart uploads",
            Feature::PublicAccessBlock => "the public access block",
            Feature::BucketTagging => "bucket tags",
            Feature::ChecksumSha256 => "SHA-256 object checksums",
        }
    }
}

/// A named S3-compatible service. It decides which sub-features are available and a few
/// defaults (region, addressing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceProfile {
    /// Amazon S3: everything.
    Aws,
    /// Cloudflare R2: no versioning, bucket tags or public access block.
    R2,
    /// MinIO: no public access block, no CORS, no lifecycle abort of multipart uploads.
    Minio,
    /// Railway Buckets (Tigris): objects only; buckets are created through Railway's API.
    Railway,
    /// Ceph RADOS Gateway or another generic S3-compatible server: versioning, CORS, lifecycle,
    /// public access block and tags (all checked against Ceph 16), but no SHA-256 checksum
    /// headers (uploads are verified with `Content-MD5` and the signed payload hash instead).
    #[default]
    #[serde(alias = "ceph", alias = "generic")]
    CephGeneric,
    /// Stackwright's local-directory storage: stores every sub-configuration.
    Local,
}

impl ServiceProfile {
    /// Every profile.
    pub const ALL: [ServiceProfile; 6] = [
        ServiceProfile::Aws,
        ServiceProfile::R2,
        ServiceProfile::Minio,
        ServiceProfile::Railway,
        ServiceProfile::CephGeneric,
        ServiceProfile::Local,
    ];

    /// The service's name, as shown in errors.
    pub fn service_name(self) -> &'static str {
        match self {
            ServiceProfile::Aws => "Amazon S3",
            ServiceProfile::R2 => "Cloudflare R2",
            ServiceProfile::Minio => "MinIO",
            ServiceProfile::Railway => "Railway Buckets",
            ServiceProfile::CephGeneric => "Ceph RGW / generic S3",
            ServiceProfile::Local => "local directory storage",
        }
    }

    /// The profile's configuration name (`aws`, `r2`, `minio`, `railway`, `ceph-generic`,
    /// `local`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceProfile::Aws => "aws",
            ServiceProfile::R2 => "r2",
            ServiceProfile::Minio => "minio",
            ServiceProfile::Railway => "railway",
            ServiceProfile::CephGeneric => "ceph-generic",
            ServiceProfile::Local => "local",
        }
    }

    /// Whether the service implements `feature`.
    pub fn supports(self, feature: Feature) -> bool {
        use Feature::*;
        match self {
            ServiceProfile::Aws | ServiceProfile::Local => true,
            ServiceProfile::R2 => {
                !matches!(feature, Versioning | NoncurrentVersionExpiration | PublicAccessBlock | BucketTagging)
            }
            ServiceProfile::Minio => !matches!(feature, PublicAccessBlock | Cors | AbortIncompleteMultipartUpload),
            ServiceProfile::Railway => false,
            ServiceProfile::CephGeneric => feature != ChecksumSha256,
        }
    }

    /// What to tell a user who asked for `feature` on this service, naming `field`.
    pub fn unsupported(self, feature: Feature, field: &str) -> String {
        let hint = match (self, feature) {
            (ServiceProfile::Railway, Feature::BucketManagement) => {
                "; Railway Buckets are created with Railway's API (bucketCreate) — declare the bucket with the \
                 Railway provider and pass its name to `storage:Object` or `storage:Folder`"
            }
            (_, Feature::Versioning) => "; remove `versioning` or set it to false",
            _ => "; remove the field or use a service that supports it",
        };
        format!(
            "{} does not support {} (field `{field}`, service profile `{}`){hint}",
            self.service_name(),
            feature.describe(),
            self.as_str()
        )
    }

    /// The region to sign with when the configuration gives none.
    pub fn default_region(self) -> &'static str {
        match self {
            ServiceProfile::R2 | ServiceProfile::Railway => "auto",
            _ => "us-east-1",
        }
    }
}

impl fmt::Display for ServiceProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown storage service profile `{0}`; expected one of aws, r2, minio, railway, ceph-generic (or ceph, generic), local"
)]
pub struct UnknownProfile(pub String);

impl FromStr for ServiceProfile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "aws" | "s3" | "amazon" => ServiceProfile::Aws,
            "r2" | "cloudflare" => ServiceProfile::R2,
            "minio" => ServiceProfile::Minio,
            "railway" | "tigris" => ServiceProfile::Railway,
            "ceph" | "generic" | "ceph-generic" | "ceph/generic" | "rgw" => ServiceProfile::CephGeneric,
            "local" => ServiceProfile::Local,
            other => return Err(UnknownProfile(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for p in ServiceProfile::ALL {
            assert_eq!(p.as_str().parse::<ServiceProfile>().unwrap(), p);
        }
        assert_eq!("Ceph".parse::<ServiceProfile>().unwrap(), ServiceProfile::CephGeneric);
        assert!("gcs".parse::<ServiceProfile>().unwrap_err().to_string().contains("ceph-generic"));
    }

    #[test]
    fn each_service_lacks_what_its_documentation_says() {
        assert!(!ServiceProfile::R2.supports(Feature::Versioning));
        assert!(ServiceProfile::R2.supports(Feature::Cors));
        assert!(!ServiceProfile::Minio.supports(Feature::PublicAccessBlock));
        assert!(!ServiceProfile::Railway.supports(Feature::BucketManagement));
        assert!(ServiceProfile::CephGeneric.supports(Feature::Lifecycle));
        assert!(ServiceProfile::Aws.supports(Feature::PublicAccessBlock));
        let m = ServiceProfile::R2.unsupported(Feature::Versioning, "versioning");
        assert!(m.contains("Cloudflare R2") && m.contains("`versioning`"), "{m}");
    }
}
