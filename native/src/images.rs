//! Loading an item's image as the URL the endpoint receives: http(s) and data URLs
//! pass through (or, with `--inline-images`, http(s) images are downloaded and sent
//! inline too); files become base64 data URLs, after the checks that keep a CSV
//! from reading outside its data folder.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shadow_core::estimate::image_size::{image_size, HEAD_BYTES};
use shadow_core::estimate::ImageCheck;
use shadow_core::image::{to_data_url, MAX_IMAGE_BYTES};
use shadow_core::input::{check_relative_path, ImageRef, Item, PathError};

/// Resolves and reads image files relative to the CSV's folder.
#[derive(Clone, Debug)]
pub struct ImageLoader {
    base: Arc<PathBuf>,
    allow_outside: bool,
    /// Folders already resolved (symlinks followed) to inside `base`: a run reads
    /// thousands of files from a few folders, and resolving each path in full costs
    /// a system call per component.
    inside: Arc<Mutex<HashSet<PathBuf>>>,
    /// With `--inline-images`: the client that downloads http(s) images, which are
    /// then sent as data URLs like files.
    remote: Option<(reqwest::Client, Duration)>,
}

impl ImageLoader {
    /// `base`: the CSV's folder (canonicalized here, so symlink escapes are caught).
    pub fn new(base: &Path, allow_outside: bool) -> std::io::Result<ImageLoader> {
        Ok(ImageLoader {
            base: Arc::new(base.canonicalize()?),
            allow_outside,
            inside: Arc::default(),
            remote: None,
        })
    }

    /// The same loader, downloading http(s) images with `client` and sending them
    /// as data URLs (for endpoints that cannot or may not fetch URLs: local servers,
    /// images on a private network), each download within `timeout`.
    pub fn inline_remote(self, client: reqwest::Client, timeout: Duration) -> ImageLoader {
        ImageLoader {
            remote: Some((client, timeout)),
            ..self
        }
    }

    /// Downloads an http(s) image (at most [`MAX_IMAGE_BYTES`]) as a data URL. The
    /// URL is named without its credentials.
    async fn download(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
        url: &str,
    ) -> Result<String, String> {
        let shown = shadow_core::redact::url_for_display(url);
        let failed = |why: String| format!("{shown}: the download failed: {why}");
        let mut response = client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| failed(crate::transport::describe(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("HTTP {}", status.as_u16())));
        }
        let too_large = || {
            format!(
                "{shown} is over the {} MiB limit",
                MAX_IMAGE_BYTES / (1024 * 1024)
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_IMAGE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(crate::transport::describe(e)))?
        {
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        to_data_url(&bytes).map_err(|e| format!("{shown}: {e}"))
    }

    /// The image URL for `item`, or a message naming the line and the file. Files
    /// are read on tokio's blocking pool.
    pub async fn load(&self, item: &Item) -> Result<String, String> {
        let path = match self.file_of(item)? {
            None => {
                return match (&self.remote, &item.image) {
                    (Some((client, timeout)), ImageRef::Url(url)) => self
                        .download(client, *timeout, url)
                        .await
                        .map_err(|e| at(item, e)),
                    _ => Ok(item.image.as_str().to_string()),
                }
            }
            Some(path) => path,
        };
        let loader = self.clone();
        let shown = item.image.as_str().to_string();
        // One trip to the blocking pool for the whole load.
        let loaded = tokio::task::spawn_blocking(move || loader.read(&path, &shown)).await;
        match loaded {
            Ok(result) => result.map_err(|e| at(item, e)),
            Err(e) => Err(at(item, format!("image loading stopped: {e}"))),
        }
    }

    /// `load`, blocking the calling thread: for callers already off the runtime.
    /// Files only: a URL image is returned as it is, even with `inline_remote`.
    pub fn load_blocking(&self, item: &Item) -> Result<String, String> {
        match self.file_of(item)? {
            None => Ok(item.image.as_str().to_string()),
            Some(path) => self
                .read(&path, item.image.as_str())
                .map_err(|e| at(item, e)),
        }
    }

    /// The CSV's folder, resolved (symlinks followed).
    pub fn data_folder(&self) -> &Path {
        &self.base
    }

    /// Why `item`'s image file would be refused as outside the data folder, as
    /// its load would say it (`images/a.png resolves to /elsewhere/images/a.png`),
    /// found without reading it: its path climbs out or is absolute elsewhere, its
    /// folder resolves elsewhere, or it is itself a symlink out. `None` when it
    /// lies inside, is a URL, cannot be resolved (a missing file fails its row in
    /// its own words), or outside paths are allowed.
    pub fn outside(&self, item: &Item) -> Option<String> {
        if self.allow_outside {
            return None;
        }
        let shown = item.image.as_str();
        let path = match &item.image {
            ImageRef::RelativePath(p) => match check_relative_path(p) {
                Ok(clean) => self.base.join(clean),
                Err(e @ (PathError::EscapesDataDir { .. } | PathError::Absolute { .. })) => {
                    return Some(e.to_string())
                }
                Err(_) => return None,
            },
            ImageRef::AbsolutePath(p) => PathBuf::from(&**p),
            _ => return None,
        };
        let outside = |real: PathBuf| {
            (!real.starts_with(&*self.base))
                .then(|| format!("{shown} resolves to {}", real.display()))
        };
        // As `open_inside` decides: the folder first, then a symlinked file.
        let real_dir = path.parent()?.canonicalize().ok()?;
        if let Some(why) = outside(real_dir.join(path.file_name()?)) {
            return Some(why);
        }
        if std::fs::symlink_metadata(&path)
            .ok()?
            .file_type()
            .is_symlink()
        {
            return outside(path.canonicalize().ok()?);
        }
        None
    }

    /// The file to read for `item`; `None` when its image is a URL.
    fn file_of(&self, item: &Item) -> Result<Option<PathBuf>, String> {
        Ok(Some(match &item.image {
            ImageRef::Url(_) | ImageRef::DataUrl(_) => return Ok(None),
            ImageRef::RelativePath(p) if self.allow_outside => self.base.join(&**p),
            ImageRef::RelativePath(p) => {
                let clean = check_relative_path(p).map_err(|e| {
                    // The core says what is wrong; the flag that allows it is ours.
                    let step = match e {
                        PathError::EscapesDataDir { .. } | PathError::Absolute { .. } => {
                            " (pass --allow-outside-data-dir to allow it)"
                        }
                        _ => "",
                    };
                    at(item, format!("{e}{step}"))
                })?;
                self.base.join(clean)
            }
            ImageRef::AbsolutePath(p) => PathBuf::from(&**p),
            other => return Err(at(item, format!("unsupported image reference {other:?}"))),
        }))
    }

    fn read(&self, path: &Path, shown: &str) -> Result<String, String> {
        let io = |e: std::io::Error| {
            format!(
                "{shown}: {} (looked for {})",
                describe_io(&e),
                path.display()
            )
        };
        let file = if self.allow_outside {
            open_image(path).map_err(io)?
        } else {
            self.open_inside(path).map_err(|e| match e {
                Escape::Io(e) => io(e),
                Escape::Outside(real) => format!(
                    "{shown} resolves to {}, outside the data folder {}; pass --allow-outside-data-dir to allow it",
                    real.display(),
                    self.base.display()
                ),
            })?
        };
        // The type of what was opened (fstat), not of what the path named a moment
        // before: nothing can be swapped in between.
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(format!(
                "{shown} is {}, not a regular file; put the image file there",
                kind_of(&meta.file_type())
            ));
        }
        if meta.len() > MAX_IMAGE_BYTES as u64 {
            return Err(format!(
                "{shown} is {:.1} MiB, over the {} MiB limit",
                meta.len() as f64 / (1024.0 * 1024.0),
                MAX_IMAGE_BYTES / (1024 * 1024)
            ));
        }
        // Exactly the size just read: `File::read_to_end` would ask the size again
        // and read once more to see the end (two system calls per image).
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&file)
            .take(meta.len())
            .read_to_end(&mut bytes)
            .map_err(io)?;
        to_data_url(&bytes).map_err(|e| format!("{shown}: {e}"))
    }

    /// Opens `path` if it resolves to a place inside the data folder: its folder
    /// (cached) and, when the file itself is a symlink, its target. The file is
    /// opened without following a final symlink, which saves asking first.
    fn open_inside(&self, path: &Path) -> Result<File, Escape> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        if !self.inside.lock().expect("not poisoned").contains(dir) {
            let real = dir.canonicalize().map_err(Escape::Io)?;
            if !real.starts_with(&*self.base) {
                return Err(Escape::Outside(
                    real.join(path.file_name().unwrap_or_default()),
                ));
            }
            self.inside
                .lock()
                .expect("not poisoned")
                .insert(dir.to_path_buf());
        }
        match open_no_follow(path) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => {
                let real = path.canonicalize().map_err(Escape::Io)?;
                if !real.starts_with(&*self.base) {
                    return Err(Escape::Outside(real));
                }
                open_image(&real).map_err(Escape::Io)
            }
            Err(e) => Err(Escape::Io(e)),
        }
    }
}

/// Opens `path` for reading without waiting on it: a FIFO (named pipe) opened for
/// reading blocks until a writer comes, and a device may block too; with
/// `O_NONBLOCK` the open returns at once and the caller's fstat then refuses
/// anything that is not a regular file. For regular files the flag changes nothing
/// (open(2): "this flag has no effect for regular files and block devices").
#[cfg(unix)]
fn open_image(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_image(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// The file at `path`, or `None` when `path` is a symlink. Opened as
/// [`open_image`] does.
#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<Option<File>> {
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Ok(None);
    }
    open_image(path).map(Some)
}

/// What a file that is not a regular file is, for a row's error.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// What an estimate finds of an image, by the checks a load makes.
impl ImageLoader {
    /// `item`'s image as a run would find it (the path, the data folder, a
    /// regular file), without reading it unless `size` asks: then its first
    /// [`HEAD_BYTES`], for its width and height. A URL is not fetched.
    pub fn check(&self, item: &Item, size: bool) -> ImageCheck {
        if let Some(why) = self.outside(item) {
            return ImageCheck::Outside { why: at(item, why) };
        }
        let path = match self.file_of(item) {
            Ok(None) => return ImageCheck::Url,
            Ok(Some(path)) => path,
            Err(why) => return ImageCheck::Missing { why },
        };
        let shown = item.image.as_str();
        let missing = |e: std::io::Error| ImageCheck::Missing {
            why: at(item, format!("{shown}: {}", describe_io(&e))),
        };
        let opened = if self.allow_outside {
            open_image(&path).map_err(Escape::Io)
        } else {
            self.open_inside(&path)
        };
        let file = match opened {
            Ok(file) => file,
            Err(Escape::Io(e)) => return missing(e),
            Err(Escape::Outside(real)) => {
                return ImageCheck::Outside {
                    why: at(item, format!("{shown} resolves to {}", real.display())),
                }
            }
        };
        match file.metadata() {
            Ok(meta) if meta.is_file() => {}
            Ok(meta) => {
                return ImageCheck::Missing {
                    why: at(
                        item,
                        format!(
                            "{shown} is {}, not a regular file",
                            kind_of(&meta.file_type())
                        ),
                    ),
                }
            }
            Err(e) => return missing(e),
        }
        if !size {
            return ImageCheck::Found { size: None };
        }
        let mut head = Vec::with_capacity(4096);
        match (&file).take(HEAD_BYTES as u64).read_to_end(&mut head) {
            Ok(_) => ImageCheck::Found {
                size: image_size(&head),
            },
            Err(e) => missing(e),
        }
    }
}

enum Escape {
    Io(std::io::Error),
    Outside(PathBuf),
}

fn at(item: &Item, what: String) -> String {
    format!("line {}: {what}", item.line)
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        // What open(2) says of a socket file, or a FIFO with no writer opened for
        // writing: there is no file to read there.
        #[cfg(unix)]
        _ if e.raw_os_error() == Some(libc::ENXIO) => {
            "not a regular file (a socket or a device with nothing behind it)".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use shadow_core::input::{parse_labels_csv, ColumnNames};

    use super::*;

    /// The load of each row of `csv` (read against `dir`), each given 5 s: a load
    /// that blocks fails the test instead of hanging it.
    fn load_all(dir: &Path, allow_outside: bool, csv: &str) -> Vec<Result<String, String>> {
        let csv = parse_labels_csv(csv, &ColumnNames::default()).unwrap();
        let loader = ImageLoader::new(dir, allow_outside).unwrap();
        csv.items
            .into_iter()
            .map(|item| {
                let (tx, rx) = mpsc::channel();
                let loader = loader.clone();
                let shown = item.image.to_string();
                std::thread::spawn(move || tx.send(loader.load_blocking(&item)));
                rx.recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|_| panic!("loading {shown} still blocks after 5 s"))
            })
            .collect()
    }

    #[test]
    fn special_files_fail_their_row_at_once_naming_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe.png"))
            .status()
            .unwrap();
        assert!(made.success());
        std::os::unix::net::UnixListener::bind(dir.path().join("socket.png")).unwrap();
        std::fs::create_dir(dir.path().join("folder.png")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("pipe.png"), dir.path().join("link.png"))
            .unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../training-data/images/digit-0000.png"),
            dir.path().join("fine.png"),
        )
        .unwrap();
        let loaded = load_all(
            dir.path(),
            false,
            "image,label\npipe.png,a\nsocket.png,a\nfolder.png,a\nlink.png,a\nfine.png,a\n",
        );
        let expect = [
            "line 2: pipe.png is a named pipe (FIFO), not a regular file",
            "line 3: socket.png: not a regular file",
            "line 4: folder.png is a folder, not a regular file",
            "line 5: link.png is a named pipe (FIFO), not a regular file",
        ];
        for (got, want) in loaded.iter().zip(expect) {
            let error = got.as_ref().expect_err(want);
            assert!(
                error.starts_with(want),
                "{error:?} should start with {want:?}"
            );
        }
        assert!(loaded[4]
            .as_ref()
            .unwrap()
            .starts_with("data:image/png;base64,"));

        // Outside paths allowed: the same checks on the plain open.
        let loaded = load_all(
            dir.path(),
            true,
            &format!(
                "image,label\n{}/pipe.png,a\n/dev/null,a\n",
                dir.path().display()
            ),
        );
        let error = loaded[0].as_ref().unwrap_err();
        assert!(error.contains("is a named pipe (FIFO)"), "{error}");
        let error = loaded[1].as_ref().unwrap_err();
        assert!(
            error.contains("/dev/null is a character device, not a regular file"),
            "{error}"
        );
    }
}
