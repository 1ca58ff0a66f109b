# SingleR annotation for scactive, with a single-cell reference.
#
# Usage: Rscript singler.R WORKDIR
#
# WORKDIR holds (written by scactive.comparison._adapters.SingleRAdapter):
#   ref.mtx, query.mtx   log1p(CP10k) expression, genes x cells, Matrix Market
#   ref_labels.txt       one label code per reference cell (c0, c1, ...)
#   params.tsv           key<TAB>value: de_method, de_n (NA = SingleR's default), aggregate (0/1)
# and receives:
#   predictions.csv      code (labels), assigned (FALSE where pruned.labels is NA),
#                        score (delta.next, the fine-tuned margin over the next label),
#                        max_score (the label's correlation in `scores`, before fine-tuning)
#   notes.txt            one line per deviation from the defaults

suppressPackageStartupMessages({
  library(Matrix)
  library(SingleR)
  library(BiocParallel)
})

workdir <- commandArgs(trailingOnly = TRUE)[1]
params <- read.delim(file.path(workdir, "params.tsv"), header = FALSE,
                     col.names = c("key", "value"), colClasses = "character",
                     na.strings = character(0))
param <- function(key) params$value[params$key == key]
notes <- character(0)

read_matrix <- function(name, prefix) {
  m <- as(readMM(file.path(workdir, name)), "CsparseMatrix")
  dimnames(m) <- list(paste0("g", seq_len(nrow(m))), paste0(prefix, seq_len(ncol(m))))
  m
}
ref <- read_matrix("ref.mtx", "r")
query <- read_matrix("query.mtx", "q")
labels <- readLines(file.path(workdir, "ref_labels.txt"))

de_n <- if (param("de_n") == "NA") NULL else as.integer(param("de_n"))
aggregate <- param("aggregate") == "1"
if (aggregate) {
  # Pseudo-bulk profiles per label (k-means within each label), SingleR's option for large
  # single-cell references; the markers are still found on the single cells.
  notes <- c(notes, "reference aggregated into pseudo-bulk profiles (aggr.ref = TRUE)")
}
pred <- SingleR(test = query, ref = ref, labels = labels, de.method = param("de_method"),
                de.n = de_n, aggr.ref = aggregate, BPPARAM = SerialParam())

scores <- as.matrix(pred$scores)
best <- match(pred$labels, colnames(scores))
out <- data.frame(
  code = pred$labels,
  assigned = !is.na(pred$pruned.labels),
  score = pred$delta.next,
  max_score = scores[cbind(seq_len(nrow(scores)), best)]
)
write.csv(out, file.path(workdir, "predictions.csv"), row.names = FALSE)
writeLines(notes, file.path(workdir, "notes.txt"))
