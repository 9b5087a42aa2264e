//! The formats a report renders to, with their file extensions and content types.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OutputFormat {
    Html,
    Markdown,
    Csv,
    Json,
    Pdf,
}

impl OutputFormat {
    pub(crate) fn parse(text: &str) -> Result<OutputFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "html" | "htm" => Ok(OutputFormat::Html),
            "md" | "markdown" => Ok(OutputFormat::Markdown),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "pdf" => Ok(OutputFormat::Pdf),
            other => Err(format!(
                "unknown report format {other:?}: expected html, md, csv, json or pdf"
            )),
        }
    }

    pub(crate) fn extension(self) -> &'static str {
        match self {
            OutputFormat::Html => "html",
            OutputFormat::Markdown => "md",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Pdf => "pdf",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Html => "text/html; charset=utf-8",
            OutputFormat::Markdown => "text/markdown; charset=utf-8",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Json => "application/json",
            OutputFormat::Pdf => "application/pdf",
        }
    }

    /// Whether the rendered bytes are UTF-8 text.
    pub(crate) fn is_text(self) -> bool {
        self != OutputFormat::Pdf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name_and_extension_and_refuse_others() {
        assert_eq!(OutputFormat::parse("md").unwrap(), OutputFormat::Markdown);
        assert_eq!(OutputFormat::parse("HTML").unwrap(), OutputFormat::Html);
        assert_eq!(OutputFormat::parse("pdf").unwrap().extension(), "pdf");
        let error = OutputFormat::parse("docx").unwrap_err();
        assert!(
            error.contains("docx") && error.contains("html, md"),
            "{error}"
        );
    }
}
