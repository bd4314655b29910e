"""The one bilevel search engine; methods change it through hooks."""
