//! Local content: hashing files and directories (SHA-256, streamed), the content source of an
//! `Object`, and content types guessed from file extensions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an object's content comes from. It carries the content's SHA-256, computed when the
/// program declares it, so a change of content is a change of arguments (shown in the plan) and
/// the stored object can be compared without downloading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectSource {
    /// A local file, streamed when uploaded.
    File {
        /// The file's path (relative paths are relative to where the program runs).
        path: String,
        /// Its SHA-256, lowercase hex.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Text given in the program.
    Inline {
        /// The content.
        text: String,
        /// Its SHA-256, lowercase hex.
        sha256: String,
    },
}

impl ObjectSource {
    /// Content from a file, hashed now. Fails if the file cannot be read.
    pub fn file(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let (sha256, size) = hash_file(path)?;
        Ok(ObjectSource::File { path: path.to_string_lossy().into_owned(), sha256, size })
    }

    /// Content given as text.
    pub fn inline(text: impl Into<String>) -> Self {
        let text = text.into();
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        ObjectSource::Inline { text, sha256 }
    }

    /// The content's SHA-256, lowercase hex.
    pub fn sha256(&self) -> &str {
        match self {
            ObjectSource::File { sha256, .. } | ObjectSource::Inline { sha256, .. } => sha256,
        }
    }

    /// The content's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            ObjectSource::File { size, .. } => *size,
            ObjectSource::Inline { text, .. } => text.len() as u64,
        }
    }

    /// The same source with another recorded hash (used to report content changed elsewhere).
    pub(crate) fn with_sha256(&self, new: String) -> Self {
        match self.clone() {
            ObjectSource::File { path, size, .. } => ObjectSource::File { path, sha256: new, size },
            ObjectSource::Inline { text, .. } => ObjectSource::Inline { text, sha256: new },
        }
    }
}

impl Default for ObjectSource {
    fn default() -> Self {
        ObjectSource::inline("")
    }
}

/// The SHA-256 (lowercase hex) and size of a file, read in 1 MiB chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Every regular file under `dir`, as relative path (with `/`) → SHA-256. Hidden files and
/// folders (names starting with `.`) are skipped; symbolic links are followed.
pub fn hash_dir(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let meta = std::fs::metadata(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("reading folder {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a folder", dir.display()),
        ));
    }
    walk(dir, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for (name, path) in entries {
        if name.starts_with('.') {
            continue;
        }
        let rel_name = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(&path, &rel_name, out)?;
        } else if meta.is_file() {
            out.insert(rel_name, hash_file(&path)?.0);
        }
    }
    Ok(())
}

/// A content type for a key, from its extension; `application/octet-stream` when unknown.
pub fn guess_content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "epub" => "application/epub+zip",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_carry_their_hash() {
        let s = ObjectSource::inline("hello");
        assert_eq!(s.sha256(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello").unwrap();
        let f = ObjectSource::file(dir.path().join("a.txt")).unwrap();
        assert_eq!((f.sha256(), f.size()), (s.sha256(), 5));
        assert!(ObjectSource::file(dir.path().join("missing")).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn folders_hash_every_visible_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("css")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>").unwrap();
        std::fs::write(dir.path().join("css/app.css"), "a{}").unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        let files = hash_dir(dir.path()).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), vec!["css/app.css", "index.html"]);
        assert_eq!(guess_content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(guess_content_type("book.EPUB"), "application/epub+zip");
    }
}
