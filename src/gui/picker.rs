//! The file picker for the connect form's CA, certificate and key: a folder's listing drawn in
//! the window itself (native dialogs need a desktop portal, and do not run under Xvfb). The
//! listing and the moves through folders are pure and tested below; [`show`] draws them.
//! No crate: egui-file-dialog 0.15 is built for egui 0.36, and egui_file 0.29 (egui 0.37) opens
//! a floating window that does not fit a 360 px one; this is a page of code in the window's own
//! layout, with the labels the tests click by.

use std::path::{Path, PathBuf};

use eframe::egui::{self, RichText};

/// Which field of the form the picked file goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PickFor {
    Ca,
    Cert,
    Key,
}

impl PickFor {
    /// The picker's title, and the accessible name of the button that opens it.
    pub fn title(self) -> &'static str {
        match self {
            PickFor::Ca => "Choose the CA file",
            PickFor::Cert => "Choose the client certificate",
            PickFor::Key => "Choose the client key",
        }
    }
}

/// One line of a folder's listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// The endings of the files a TLS setup uses; the others are hidden unless asked for.
const TLS_ENDINGS: [&str; 5] = ["pem", "crt", "cer", "key", "der"];

/// The picker's state: the folder shown, its listing, the file selected.
#[derive(Debug)]
pub struct Picker {
    pub target: PickFor,
    pub dir: PathBuf,
    /// The folder's entries, folders first, each group by name; or why it cannot be read.
    pub entries: Result<Vec<Entry>, String>,
    pub selected: Option<PathBuf>,
    /// Every file, not only the TLS ones.
    pub all_files: bool,
}

/// What the person did in the picker this frame.
#[derive(Debug, PartialEq)]
pub enum Picked {
    Nothing,
    Cancelled,
    File(PathBuf),
}

impl Picker {
    /// Opens on the folder of `current` (the field's text) when it names an existing file or
    /// folder, else on the working directory (where `certs/` of a development server is).
    pub fn open(target: PickFor, current: &str) -> Picker {
        let current = Path::new(current.trim());
        let (dir, selected) = if current.is_file() {
            let dir = match current.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (dir, Some(current.to_path_buf()))
        } else if current.is_dir() && !current.as_os_str().is_empty() {
            (current.to_path_buf(), None)
        } else {
            (PathBuf::from("."), None)
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let selected = selected.map(|s| std::path::absolute(&s).unwrap_or(s));
        let mut picker = Picker {
            target,
            dir,
            entries: Ok(Vec::new()),
            selected,
            all_files: false,
        };
        picker.refresh();
        picker
    }

    /// Reads the folder again.
    pub fn refresh(&mut self) {
        self.entries = list(&self.dir, self.all_files);
    }

    /// Into a sub-folder of the one shown.
    pub fn enter(&mut self, name: &str) {
        self.dir.push(name);
        self.selected = None;
        self.refresh();
    }

    /// To the parent folder; at the root, nothing.
    pub fn up(&mut self) {
        if self.dir.pop() {
            self.selected = None;
            self.refresh();
        }
    }
}

/// The entries of `dir` a person picks from: no hidden ones (`.name`), folders first, then the
/// files (only those with a TLS file's ending unless `all_files`), each group sorted by name.
pub fn list(dir: &Path, all_files: bool) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| format!("Cannot read {}: {}.", dir.display(), e.kind()))?;
    let mut entries: Vec<Entry> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // Through symbolic links: a link to a folder is a folder.
            let is_dir = e.path().is_dir();
            let shown = !name.starts_with('.')
                && (is_dir
                    || all_files
                    || Path::new(&name)
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| TLS_ENDINGS.contains(&x.to_ascii_lowercase().as_str())));
            shown.then_some(Entry { name, is_dir })
        })
        .collect();
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// Draws the picker as the whole window (its own panels, as a session screen: it works at any
/// width, the buttons always in sight at the bottom).
pub fn show(ui: &mut egui::Ui, picker: &mut Picker) -> Picked {
    let mut picked = Picked::Nothing;
    egui::Panel::top("picker-folder").show(ui, |ui| {
        ui.add_space(4.0);
        ui.heading(picker.target.title());
        ui.horizontal_wrapped(|ui| {
            if ui.button("Up").clicked() {
                picker.up();
            }
            ui.label(RichText::new(picker.dir.display().to_string()).monospace());
        });
        if ui
            .checkbox(&mut picker.all_files, "Show all files")
            .changed()
        {
            picker.refresh();
        }
        if !picker.all_files {
            ui.label(
                RichText::new(
                    "Shown: folders, and files ending in .pem, .crt, .cer, .key or .der.",
                )
                .weak(),
            );
        }
        ui.add_space(2.0);
    });
    egui::Panel::bottom("picker-buttons").show(ui, |ui| {
        ui.add_space(4.0);
        let chosen = match &picker.selected {
            Some(path) => path.display().to_string(),
            None => "No file selected: click one, or double-click to choose it.".into(),
        };
        ui.label(chosen);
        ui.horizontal(|ui| {
            let choose = ui.add_enabled(picker.selected.is_some(), egui::Button::new("Choose"));
            if choose.clicked()
                && let Some(file) = picker.selected.clone()
            {
                picked = Picked::File(file);
            }
            if ui.button("Cancel").clicked() {
                picked = Picked::Cancelled;
            }
        });
        ui.add_space(4.0);
    });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt("picker-list")
            .auto_shrink(false)
            .show(ui, |ui| match &picker.entries {
                Err(why) => {
                    ui.label(why.clone());
                }
                Ok(entries) if entries.is_empty() => {
                    ui.label(RichText::new("Nothing to choose in this folder.").weak());
                }
                Ok(entries) => {
                    let mut enter = None;
                    for entry in entries {
                        let path = picker.dir.join(&entry.name);
                        let text = if entry.is_dir {
                            format!("{}/", entry.name)
                        } else {
                            entry.name.clone()
                        };
                        let selected = picker.selected.as_ref() == Some(&path);
                        // The whole row is the target, its name at the left as in a file list.
                        let layout = egui::Layout::top_down_justified(egui::Align::Min);
                        let row = ui
                            .with_layout(layout, |ui| {
                                ui.add(egui::Button::selectable(selected, text))
                            })
                            .inner;
                        if entry.is_dir && row.clicked() {
                            enter = Some(entry.name.clone());
                        } else if row.double_clicked() {
                            picked = Picked::File(path);
                        } else if row.clicked() {
                            picker.selected = Some(path);
                        }
                    }
                    if let Some(name) = enter {
                        picker.enter(&name);
                    }
                }
            });
    });
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        picked = Picked::Cancelled;
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("securetcp-picker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        for file in ["ca.pem", "b.KEY", "notes.txt", ".hidden.pem"] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        dir
    }

    #[test]
    fn folders_first_then_tls_files_and_no_hidden_ones() {
        let dir = scratch("list");
        let names = |all| -> Vec<String> {
            list(&dir, all)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        assert_eq!(names(false), ["certs", "b.KEY", "ca.pem"]);
        assert_eq!(names(true), ["certs", "b.KEY", "ca.pem", "notes.txt"]);
        assert!(
            list(&dir.join("absent"), false)
                .unwrap_err()
                .starts_with("Cannot read ")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn opens_where_the_field_points_and_moves_through_folders() {
        let dir = scratch("moves");
        let ca = dir.join("ca.pem");
        let mut picker = Picker::open(PickFor::Ca, &ca.display().to_string());
        assert_eq!(picker.dir, dir);
        assert_eq!(picker.selected.as_deref(), Some(ca.as_path()));
        picker.enter("certs");
        assert_eq!(picker.dir, dir.join("certs"));
        assert_eq!(picker.selected, None);
        assert_eq!(picker.entries, Ok(Vec::new()));
        picker.up();
        assert_eq!(picker.dir, dir);
        // A field naming nothing that exists opens on the working directory.
        let picker = Picker::open(PickFor::Key, "/no/such/file.pem");
        assert_eq!(picker.dir, std::env::current_dir().unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
