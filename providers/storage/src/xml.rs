//! The S3 XML bodies: writing the sub-configuration documents and multipart/delete requests, and
//! reading the responses (namespace-agnostic, so services that omit the S3 namespace work too).

use std::collections::BTreeMap;
use std::fmt::Write;

use roxmltree::{Document, Node};

use crate::bucket::{CorsRule, LifecycleRule, PublicAccessBlock};
use crate::store::{ObjectInfo, Versioning};

const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for an XML element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn elem(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(value));
}

/// A parse failure of a service response.
pub fn malformed(what: &str, e: impl std::fmt::Display) -> String {
    format!("the service's {what} response could not be read: {e}")
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name(name))
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|n| n.text().unwrap_or_default().to_owned())
}

fn number<T: std::str::FromStr>(node: Node<'_, '_>, name: &str) -> Option<T> {
    text(node, name).and_then(|t| t.trim().parse().ok())
}

fn parse<'a>(body: &'a str, what: &str) -> Result<Document<'a>, String> {
    Document::parse(body).map_err(|e| malformed(what, e))
}

// ---- versioning

/// `<VersioningConfiguration>` for PUT.
pub fn versioning(enabled: bool) -> String {
    let status = if enabled { "Enabled" } else { "Suspended" };
    format!("<VersioningConfiguration xmlns=\"{NS}\"><Status>{status}</Status></VersioningConfiguration>")
}

/// Reads GetBucketVersioning; a missing `<Status>` means never versioned.
pub fn parse_versioning(body: &str) -> Result<Versioning, String> {
    if body.trim().is_empty() {
        return Ok(Versioning::Unversioned);
    }
    let doc = parse(body, "GetBucketVersioning")?;
    Ok(match text(doc.root_element(), "Status").as_deref().map(str::trim) {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => Versioning::Unversioned,
    })
}

// ---- CORS

/// `<CORSConfiguration>` for PUT.
pub fn cors(rules: &[CorsRule]) -> String {
    let mut out = format!("<CORSConfiguration xmlns=\"{NS}\">");
    for r in rules {
        out.push_str("<CORSRule>");
        if let Some(id) = &r.id {
            elem(&mut out, "ID", id);
        }
        for o in &r.allowed_origins {
            elem(&mut out, "AllowedOrigin", o);
        }
        for m in &r.allowed_methods {
            elem(&mut out, "AllowedMethod", &m.to_ascii_uppercase());
        }
        for h in &r.allowed_headers {
            elem(&mut out, "AllowedHeader", h);
        }
        for h in &r.expose_headers {
            elem(&mut out, "ExposeHeader", h);
        }
        if let Some(age) = r.max_age_seconds {
            elem(&mut out, "MaxAgeSeconds", &age.to_string());
        }
        out.push_str("</CORSRule>");
    }
    out.push_str("</CORSConfiguration>");
    out
}

/// Reads GetBucketCors.
pub fn parse_cors(body: &str) -> Result<Vec<CorsRule>, String> {
    let doc = parse(body, "GetBucketCors")?;
    let list = |n: Node<'_, '_>, name: &str| -> Vec<String> {
        children(n, name).map(|c| c.text().unwrap_or_default().trim().to_owned()).collect()
    };
    Ok(children(doc.root_element(), "CORSRule")
        .map(|r| CorsRule {
            id: text(r, "ID").filter(|s| !s.is_empty()),
            allowed_origins: list(r, "AllowedOrigin"),
            allowed_methods: list(r, "AllowedMethod"),
            allowed_headers: list(r, "AllowedHeader"),
            expose_headers: list(r, "ExposeHeader"),
            max_age_seconds: number(r, "MaxAgeSeconds"),
        })
        .collect())
}

// ---- lifecycle

/// `<LifecycleConfiguration>` for PUT.
pub fn lifecycle(rules: &[LifecycleRule]) -> String {
    let mut out = format!("<LifecycleConfiguration xmlns=\"{NS}\">");
    for r in rules {
        out.push_str("<Rule>");
        elem(&mut out, "ID", &r.id);
        out.push_str("<Filter>");
        elem(&mut out, "Prefix", &r.prefix);
        out.push_str("</Filter>");
        elem(&mut out, "Status", if r.enabled { "Enabled" } else { "Disabled" });
        if let Some(d) = r.expiration_days {
            let _ = write!(out, "<Expiration><Days>{d}</Days></Expiration>");
        }
        if let Some(d) = r.noncurrent_version_expiration_days {
            let _ = write!(
                out,
                "<NoncurrentVersionExpiration><NoncurrentDays>{d}</NoncurrentDays></NoncurrentVersionExpiration>"
            );
        }
        if let Some(d) = r.abort_incomplete_multipart_upload_days {
            let _ = write!(
                out,
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{d}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            );
        }
        out.push_str("</Rule>");
    }
    out.push_str("</LifecycleConfiguration>");
    out
}

/// Reads GetBucketLifecycleConfiguration (both `<Filter><Prefix>` and the legacy `<Prefix>`).
pub fn parse_lifecycle(body: &str) -> Result<Vec<LifecycleRule>, String> {
    let doc = parse(body, "GetBucketLifecycleConfiguration")?;
    Ok(children(doc.root_element(), "Rule")
        .map(|r| {
            let prefix = child(r, "Filter")
                .and_then(|f| text(f, "Prefix").or_else(|| child(f, "And").and_then(|a| text(a, "Prefix"))))
                .or_else(|| text(r, "Prefix"))
                .unwrap_or_default();
            LifecycleRule {
                id: text(r, "ID").unwrap_or_default(),
                prefix,
                enabled: text(r, "Status").is_some_and(|s| s.trim() == "Enabled"),
                expiration_days: child(r, "Expiration").and_then(|e| number(e, "Days")),
                noncurrent_version_expiration_days: child(r, "NoncurrentVersionExpiration")
                    .and_then(|e| number(e, "NoncurrentDays")),
                abort_incomplete_multipart_upload_days: child(r, "AbortIncompleteMultipartUpload")
                    .and_then(|e| number(e, "DaysAfterInitiation")),
            }
        })
        .collect())
}

// ---- public access block

/// `<PublicAccessBlockConfiguration>` for PUT.
pub fn public_access_block(b: &PublicAccessBlock) -> String {
    format!(
        "<PublicAccessBlockConfiguration xmlns=\"{NS}\"><BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls><BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
        b.block_public_acls, b.ignore_public_acls, b.block_public_policy, b.restrict_public_buckets
    )
}

/// Reads GetPublicAccessBlock.
pub fn parse_public_access_block(body: &str) -> Result<PublicAccessBlock, String> {
    let doc = parse(body, "GetPublicAccessBlock")?;
    let root = doc.root_element();
    let flag = |name: &str| text(root, name).is_some_and(|t| t.trim().eq_ignore_ascii_case("true"));
    Ok(PublicAccessBlock {
        block_public_acls: flag("BlockPublicAcls"),
        ignore_public_acls: flag("IgnorePublicAcls"),
        block_public_policy: flag("BlockPublicPolicy"),
        restrict_public_buckets: flag("RestrictPublicBuckets"),
    })
}

// ---- tags

/// `<Tagging>` for PUT.
pub fn tagging(tags: &BTreeMap<String, String>) -> String {
    let mut out = format!("<Tagging xmlns=\"{NS}\"><TagSet>");
    for (k, v) in tags {
        out.push_str("<Tag>");
        elem(&mut out, "Key", k);
        elem(&mut out, "Value", v);
        out.push_str("</Tag>");
    }
    out.push_str("</TagSet></Tagging>");
    out
}

/// Reads GetBucketTagging.
pub fn parse_tagging(body: &str) -> Result<BTreeMap<String, String>, String> {
    let doc = parse(body, "GetBucketTagging")?;
    let mut tags = BTreeMap::new();
    for set in children(doc.root_element(), "TagSet") {
        for t in children(set, "Tag") {
            tags.insert(text(t, "Key").unwrap_or_default(), text(t, "Value").unwrap_or_default());
        }
    }
    Ok(tags)
}

// ---- create bucket

/// `<CreateBucketConfiguration>`; `None` for us-east-1, which takes no body.
pub fn create_bucket(region: &str) -> Option<String> {
    if region.is_empty() || region == "us-east-1" {
        return None;
    }
    Some(format!(
        "<CreateBucketConfiguration xmlns=\"{NS}\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        escape(region)
    ))
}

// ---- listings

/// One page of ListObjectsV2: the objects and the continuation token, if there is more.
pub fn parse_list_objects(body: &str) -> Result<(Vec<ObjectInfo>, Option<String>), String> {
    let doc = parse(body, "ListObjectsV2")?;
    let root = doc.root_element();
    let objects = children(root, "Contents")
        .map(|c| ObjectInfo {
            key: text(c, "Key").unwrap_or_default(),
            size: number(c, "Size").unwrap_or(0),
            etag: unquote(&text(c, "ETag").unwrap_or_default()),
        })
        .collect();
    let truncated = text(root, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let token = if truncated { text(root, "NextContinuationToken").filter(|t| !t.is_empty()) } else { None };
    Ok((objects, token))
}

/// One object version or delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The key.
    pub key: String,
    /// The version id (`null` for objects written before versioning).
    pub version_id: String,
}

/// A page of ListObjectVersions: versions and delete markers, and the next key and version-id
/// markers when truncated.
pub type VersionsPage = (Vec<VersionEntry>, Option<(String, String)>);

/// Reads one page of ListObjectVersions.
pub fn parse_list_versions(body: &str) -> Result<VersionsPage, String> {
    let doc = parse(body, "ListObjectVersions")?;
    let root = doc.root_element();
    let entries = root
        .children()
        .filter(|n| n.has_tag_name("Version") || n.has_tag_name("DeleteMarker"))
        .map(|v| VersionEntry {
            key: text(v, "Key").unwrap_or_default(),
            version_id: text(v, "VersionId").unwrap_or_else(|| "null".into()),
        })
        .collect();
    let truncated = text(root, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = if truncated {
        Some((text(root, "NextKeyMarker").unwrap_or_default(), text(root, "NextVersionIdMarker").unwrap_or_default()))
    } else {
        None
    };
    Ok((entries, next))
}

/// A page of ListMultipartUploads: (key, upload id) pairs and the next markers.
pub type UploadsPage = (Vec<(String, String)>, Option<(String, String)>);

/// Reads one page of ListMultipartUploads.
pub fn parse_list_uploads(body: &str) -> Result<UploadsPage, String> {
    let doc = parse(body, "ListMultipartUploads")?;
    let root = doc.root_element();
    let uploads = children(root, "Upload")
        .map(|u| (text(u, "Key").unwrap_or_default(), text(u, "UploadId").unwrap_or_default()))
        .collect();
    let truncated = text(root, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = if truncated {
        Some((text(root, "NextKeyMarker").unwrap_or_default(), text(root, "NextUploadIdMarker").unwrap_or_default()))
    } else {
        None
    };
    Ok((uploads, next))
}

// ---- deletes

/// `<Delete>` for DeleteObjects: (key, optional version id), quiet mode.
pub fn delete_objects(items: &[(String, Option<String>)]) -> String {
    let mut out = format!("<Delete xmlns=\"{NS}\"><Quiet>true</Quiet>");
    for (key, version) in items {
        out.push_str("<Object>");
        elem(&mut out, "Key", key);
        if let Some(v) = version {
            elem(&mut out, "VersionId", v);
        }
        out.push_str("</Object>");
    }
    out.push_str("</Delete>");
    out
}

/// The per-key errors of a DeleteObjects response, as (key, code, message).
pub fn parse_delete_errors(body: &str) -> Result<Vec<(String, String, String)>, String> {
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc = parse(body, "DeleteObjects")?;
    Ok(children(doc.root_element(), "Error")
        .map(|e| {
            (
                text(e, "Key").unwrap_or_default(),
                text(e, "Code").unwrap_or_default(),
                text(e, "Message").unwrap_or_default(),
            )
        })
        .collect())
}

// ---- multipart

/// Reads CreateMultipartUpload's upload id.
pub fn parse_upload_id(body: &str) -> Result<String, String> {
    let doc = parse(body, "CreateMultipartUpload")?;
    text(doc.root_element(), "UploadId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("CreateMultipartUpload", "no UploadId"))
}

/// `<CompleteMultipartUpload>` with (part number, ETag) pairs in order.
pub fn complete_multipart(parts: &[(u32, String)]) -> String {
    let mut out = format!("<CompleteMultipartUpload xmlns=\"{NS}\">");
    for (n, etag) in parts {
        let _ = write!(out, "<Part><PartNumber>{n}</PartNumber><ETag>\"{}\"</ETag></Part>", escape(etag));
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}

/// Reads an ETag from CompleteMultipartUpload or CopyObject results; an `<Error>` document (which
/// both can return with status 200) is returned as `Err((code, message))`.
pub fn parse_etag_result(body: &str) -> Result<Result<String, (String, String)>, String> {
    let doc = parse(body, "upload result")?;
    let root = doc.root_element();
    if root.has_tag_name("Error") {
        return Ok(Err((text(root, "Code").unwrap_or_default(), text(root, "Message").unwrap_or_default())));
    }
    Ok(Ok(unquote(&text(root, "ETag").unwrap_or_default())))
}

/// An ETag without its quotes.
pub fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_round_trips_and_escapes() {
        let rules = vec![CorsRule {
            id: Some("web".into()),
            allowed_origins: vec!["https://a.example?x=1&y=<2>".into()],
            allowed_methods: vec!["get".into(), "PUT".into()],
            allowed_headers: vec!["*".into()],
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(600),
        }];
        let xml = cors(&rules);
        assert!(xml.contains("&amp;y=&lt;2&gt;"), "{xml}");
        let back = parse_cors(&xml).unwrap();
        assert_eq!(back[0].allowed_methods, vec!["GET", "PUT"]);
        assert_eq!(back[0].allowed_origins, rules[0].allowed_origins);
        assert_eq!(back[0].max_age_seconds, Some(600));
    }

    #[test]
    fn lifecycle_reads_both_prefix_forms() {
        let rules = vec![LifecycleRule {
            id: "tmp".into(),
            prefix: "tmp/".into(),
            enabled: true,
            expiration_days: Some(7),
            noncurrent_version_expiration_days: Some(30),
            abort_incomplete_multipart_upload_days: Some(1),
        }];
        assert_eq!(parse_lifecycle(&lifecycle(&rules)).unwrap(), rules);
        let legacy = "<LifecycleConfiguration><Rule><ID>a</ID><Prefix>logs/</Prefix><Status>Disabled</Status><Expiration><Days>3</Days></Expiration></Rule></LifecycleConfiguration>";
        let r = &parse_lifecycle(legacy).unwrap()[0];
        assert_eq!((r.prefix.as_str(), r.enabled, r.expiration_days), ("logs/", false, Some(3)));
    }

    #[test]
    fn versioning_without_status_is_unversioned() {
        let xml = format!("<VersioningConfiguration xmlns=\"{NS}\"/>");
        assert_eq!(parse_versioning(&xml).unwrap(), Versioning::Unversioned);
        assert_eq!(parse_versioning(&versioning(false)).unwrap(), Versioning::Suspended);
    }

    #[test]
    fn errors_inside_200_results_are_detected() {
        let r = parse_etag_result("<Error><Code>InternalError</Code><Message>x</Message></Error>").unwrap();
        assert_eq!(r, Err(("InternalError".into(), "x".into())));
        let ok =
            parse_etag_result("<CompleteMultipartUploadResult><ETag>\"abc-3\"</ETag></CompleteMultipartUploadResult>");
        assert_eq!(ok.unwrap(), Ok("abc-3".into()));
    }

    #[test]
    fn tags_and_listing_parse() {
        let tags = BTreeMap::from([("env".to_owned(), "dev & test".to_owned())]);
        assert_eq!(parse_tagging(&tagging(&tags)).unwrap(), tags);
        let page = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>a b</Key><Size>3</Size><ETag>&quot;e1&quot;</ETag></Contents></ListBucketResult>";
        let (objects, token) = parse_list_objects(page).unwrap();
        assert_eq!(objects, vec![ObjectInfo { key: "a b".into(), size: 3, etag: "e1".into() }]);
        assert_eq!(token.as_deref(), Some("t1"));
    }
}
