"""Publishing built sources: dataset cards, `datasets` loading and rendering, exports, hub push."""
