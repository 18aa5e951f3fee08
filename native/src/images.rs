//! Loading an item's image as the URL the endpoint receives: http(s) and data URLs
//! pass through; files become base64 data URLs, after the checks that keep a CSV
//! from reading outside its data folder.

use std::path::{Path, PathBuf};

use shadow_core::image::{to_data_url, MAX_IMAGE_BYTES};
use shadow_core::input::{check_relative_path, ImageRef, Item};

/// Resolves and reads image files relative to the CSV's folder.
#[derive(Clone, Debug)]
pub struct ImageLoader {
    base: PathBuf,
    allow_outside: bool,
}

impl ImageLoader {
    /// `base`: the CSV's folder (canonicalized here, so symlink escapes are caught).
    pub fn new(base: &Path, allow_outside: bool) -> std::io::Result<ImageLoader> {
        Ok(ImageLoader {
            base: base.canonicalize()?,
            allow_outside,
        })
    }

    /// The image URL for `item`, or a message naming the line and the file.
    pub async fn load(&self, item: &Item) -> Result<String, String> {
        let at = |what: String| format!("line {}: {what}", item.line);
        let path = match &item.image {
            ImageRef::Url(url) | ImageRef::DataUrl(url) => return Ok(url.clone()),
            ImageRef::RelativePath(p) if self.allow_outside => self.base.join(p),
            ImageRef::RelativePath(p) => {
                let clean = check_relative_path(p).map_err(|e| at(e.to_string()))?;
                self.base.join(clean)
            }
            ImageRef::AbsolutePath(p) => PathBuf::from(p),
            other => return Err(at(format!("unsupported image reference {other:?}"))),
        };
        let shown = item.image.as_str();
        let real = tokio::fs::canonicalize(&path).await.map_err(|e| {
            at(format!(
                "{shown}: {} (looked for {})",
                describe_io(&e),
                path.display()
            ))
        })?;
        if !self.allow_outside && !real.starts_with(&self.base) {
            return Err(at(format!(
                "{shown} resolves to {}, outside the data folder {}; pass --allow-outside-data-dir to allow it",
                real.display(),
                self.base.display()
            )));
        }
        let meta = tokio::fs::metadata(&real)
            .await
            .map_err(|e| at(format!("{shown}: {}", describe_io(&e))))?;
        if !meta.is_file() {
            return Err(at(format!("{shown} is not a file")));
        }
        if meta.len() > MAX_IMAGE_BYTES as u64 {
            return Err(at(format!(
                "{shown} is {:.1} MiB, over the {} MiB limit",
                meta.len() as f64 / (1024.0 * 1024.0),
                MAX_IMAGE_BYTES / (1024 * 1024)
            )));
        }
        let bytes = tokio::fs::read(&real)
            .await
            .map_err(|e| at(format!("{shown}: {}", describe_io(&e))))?;
        to_data_url(&bytes).map_err(|e| at(format!("{shown}: {e}")))
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
