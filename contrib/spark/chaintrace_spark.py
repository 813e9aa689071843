#!/usr/bin/env python3
"""chaintrace's multi-input clustering and `stats flows` on Apache Spark.

The same Parquet dataset chaintrace writes (docs/SCHEMA.md), read by PySpark, for when a
chain no longer fits one machine. Two jobs, run in one Spark session:

- ``--cluster OUT``: addresses clustered with the multi-input (common-input-ownership)
  heuristic, CoinJoins excluded by exactly chaintrace's rule (src/cluster/heuristics/
  coinjoin.rs). Connected components by alternating large-star and small-star rounds
  (Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii: "Connected Components in MapReduce
  and Beyond", SoCC 2014). Writes OUT (Parquet): address, representative, cluster_key. The
  representative is chaintrace's (the cluster's address of smallest id: chaintrace numbers
  addresses in order of first appearance on the chain); cluster_key is its first
  appearance packed into a long (height, position in the block, output index).
- ``--flows OUT --category C[,C...]``: `chaintrace stats flows` (src/stats/mod.rs):
  receipts and sendings of the entities of those label categories, per day, week, month or
  year (UTC). Writes OUT/inflows and OUT/outflows (Parquet).

It prints one JSON document on stdout (the figures chaintrace prints with --json); Spark's
own log goes to stderr. Amounts are exact integer satoshi (LongType) throughout.

    spark-submit contrib/spark/chaintrace_spark.py --data DATA/bitcoin \\
        --cluster OUT/address_cluster --flows OUT/flows --category ransomware

``--data`` is the chain directory (``DATA/<network>``, the one holding _manifest.json);
any path Spark reads (hdfs://, s3a://, file://) works. See contrib/spark/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

# --- The CoinJoin rule (mirrors src/cluster/heuristics/coinjoin.rs) -------------------------

#: Whirlpool pool denominations (satoshi).
WHIRLPOOL_DENOMINATIONS = [100_000, 1_000_000, 5_000_000, 50_000_000]

# --- Label precedence (mirrors src/labels/precedence.rs) ------------------------------------

#: GraphSense TagPack confidence ids and their levels; an id outside the table ranks 0.
CONFIDENCE = {
    "override": 100,
    "ownership": 100,
    "ledger_immanent": 100,
    "manual_transaction": 90,
    "service_api": 70,
    "forensic_investigation": 70,
    "authority_data": 60,
    "trusted_provider": 50,
    "service_data": 50,
    "forensic": 50,
    "untrusted_transaction": 40,
    "web_crawl": 20,
    "heuristic": 10,
    "unknown": 5,
}

#: Need-to-know categories (src/share/mod.rs SENSITIVE), compared lower case with - as _.
SENSITIVE = ["child_sexual_abuse", "child_sexual_abuse_material", "csam", "sexual_abuse"]
#: What a need-to-know counterparty category is shown as when not named.
NEED_TO_KNOW = "need_to_know"
#: Fewest payments (or transfers) a cell of a named need-to-know category may show.
MIN_CELL = 10


def is_sensitive(category: str) -> bool:
    return category.lower().replace("-", "_") in SENSITIVE


# --- Reading the dataset ---------------------------------------------------------------------


def read_text(spark: SparkSession, path: str) -> str:
    """A small text file, through Hadoop's FileSystem so that hdfs:// and s3a:// paths work
    (Spark's readers skip files whose names start with _ or ., such as _manifest.json)."""
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    fs = p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.open(p)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


class Dataset:
    """The chain directory's tables, read from exactly the part files its manifest lists (a
    part the manifest does not list is the leftover of a killed ingest, docs/SCHEMA.md)."""

    def __init__(self, spark: SparkSession, chain: str):
        self.spark = spark
        self.chain = chain.rstrip("/")
        manifest_path = f"{self.chain}/_manifest.json"
        try:
            text = read_text(spark, manifest_path)
        except Exception as e:  # noqa: BLE001 - py4j raises the JVM's exception
            raise SystemExit(
                f"{manifest_path} cannot be read ({e.__class__.__name__}): --data must be the "
                "chain directory DATA/<network> of a chaintrace dataset"
            ) from None
        self.manifest = json.loads(text)
        parts = self.manifest.get("parts", [])
        if not parts:
            raise SystemExit(f"{manifest_path} lists no parts: ingest a chain first")
        # A dataset that starts above genesis (a height window, `ingest --from H`) has inputs
        # spending outputs from before it; chaintrace's index leaves those out of the inputs
        # it clusters (Prev::BeforeWindow), and so must we.
        self.window = min(p["from"] for p in parts) > 0 or len(self.manifest.get("ranges", [])) > 1
        self.parts = parts

    def table(self, name: str) -> DataFrame:
        files = [f"{self.chain}/{name}/{p['files'][name]['file']}" for p in self.parts]
        return self.spark.read.parquet(*files)


# --- Clustering ------------------------------------------------------------------------------


#: Bits of an output's place in the packed key: below 2^17 outputs per transaction and 2^16
#: transactions per block, as Bitcoin's block weight limit (4,000,000) guarantees: an
#: output weighs at least 36 (9 bytes) and a transaction at least 240 (60 bytes).
VOUT_BITS, TX_INDEX_BITS = 17, 16


def address_keys(ds: Dataset) -> DataFrame:
    """(address, key): each address's first appearance on the chain (height, position in the
    block, output index) packed into one long, in that order. chaintrace's address ids
    number addresses in this order, and its cluster id is the smallest id of a cluster, so
    the address with the smallest key of a cluster is chaintrace's representative. (Keys
    are not dense like chaintrace's ids: numbering them would cost a global sort.)"""
    outs = ds.table("outputs").where(F.col("address").isNotNull())
    txs = ds.table("transactions").select("txid", "tx_index")
    place = (
        F.shiftleft(F.col("height").cast("long"), VOUT_BITS + TX_INDEX_BITS)
        + F.shiftleft(F.col("tx_index").cast("long"), VOUT_BITS)
        + F.col("vout").cast("long")
    )
    return outs.join(txs, "txid").groupBy("address").agg(F.min(place).alias("key"))


def spent_inputs(ds: Dataset) -> DataFrame:
    """Inputs of non-coinbase transactions that spend an output of the dataset: the inputs
    chaintrace's TxView holds (txid, address; address null where the spent script has
    none)."""
    ins = ds.table("inputs").where(F.col("prev_txid").isNotNull()).select(
        "txid", "prev_txid", "prev_vout", "address"
    )
    if ds.window:
        outs = ds.table("outputs").select(
            F.col("txid").alias("prev_txid"), F.col("vout").alias("prev_vout")
        )
        ins = ins.join(outs, ["prev_txid", "prev_vout"], "left_semi")
    return ins.select("txid", "address")


def coinjoins(ds: Dataset, ins: DataFrame) -> DataFrame:
    """(txid, kind) of every transaction chaintrace's rule calls a CoinJoin (whirlpool,
    joinmarket or equal-output); only transactions of two inputs or more and three outputs
    or more can be one. Every output counts, with or without an address, as in the rule."""
    n_in = ins.groupBy("txid").agg(F.count(F.lit(1)).alias("n_in")).where("n_in >= 2")
    per_value = (
        ds.table("outputs")
        .select("txid", "value")
        .join(n_in.select("txid"), "txid", "left_semi")
        .groupBy("txid", "value")
        .agg(F.count(F.lit(1)).alias("k"))
    )
    shape = per_value.groupBy("txid").agg(
        F.sum("k").alias("n_out"),
        F.max("k").alias("best"),  # the most frequent output value's count
        F.count(F.lit(1)).alias("distinct_values"),
        F.min("value").alias("value"),
    )
    t = shape.join(n_in, "txid").where("n_out >= 3")
    others = F.col("n_out") - F.col("best")
    kind = (
        F.when(
            (F.col("n_in") == 5)
            & (F.col("n_out") == 5)
            & (F.col("distinct_values") == 1)
            & F.col("value").isin(WHIRLPOOL_DENOMINATIONS),
            F.lit("whirlpool"),
        )
        .when((F.col("best") < 3) | (F.col("n_in") < F.col("best")), F.lit(None))
        .when((others == F.col("best")) | (others + 1 == F.col("best")), F.lit("joinmarket"))
        .when(F.col("best") * 3 >= F.col("n_out"), F.lit("equal-output"))
    )
    return t.select("txid", kind.alias("kind")).where(F.col("kind").isNotNull())


def checkpoint(df: DataFrame, reliable: bool) -> DataFrame:
    """Materialises `df` and cuts its lineage: each round's plan would otherwise grow with
    every earlier round's."""
    return df.checkpoint(eager=True) if reliable else df.localCheckpoint(eager=True)


def large_star(e: DataFrame) -> DataFrame:
    """Kiveris et al.'s large-star: every node u links each larger neighbour v to m(u), the
    smallest node of u's closed neighbourhood. Edges come and go as (u, v), any direction."""
    both = e.union(e.select(F.col("v").alias("u"), F.col("u").alias("v")))
    m = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (
        both.join(m, "u")
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("u"), F.col("m").alias("v"))
        .distinct()
    )


def small_star(e: DataFrame) -> DataFrame:
    """Small-star: every node u links itself and each smaller neighbour to m, the smallest
    of them. Returns edges oriented (larger, smaller)."""
    o = e.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")).distinct()
    m = o.groupBy("u").agg(F.min("v").alias("m"))
    linked = o.join(m, "u").where(F.col("v") != F.col("m")).select(
        F.col("v").alias("u"), F.col("m").alias("v")
    )
    return linked.union(m.select("u", F.col("m").alias("v"))).distinct()


def is_stars(e: DataFrame) -> bool:
    """Whether the edges (oriented larger → smaller) are stars around their smallest node:
    every node has at most one smaller neighbour, and that neighbour none. Then each
    component is one star and its centre its smallest node, the cluster id. One Spark job."""
    out_degree = e.groupBy("u").agg(F.count(F.lit(1)).alias("n"))
    branching = out_degree.where("n > 1").select("u")
    chained = e.join(out_degree.select(F.col("u").alias("v")), "v", "left_semi").select("u")
    return branching.union(chained).limit(1).count() == 0


def components(edges: DataFrame, reliable_checkpoints: bool) -> tuple[DataFrame, int]:
    """(id, root) of every node with an edge, root the smallest id of its
    connected component; and the rounds taken. Alternates large-star and small-star until
    the graph is stars (O(log² n) rounds, Kiveris et al. Theorem 3; a handful in practice)."""
    e = checkpoint(edges, reliable_checkpoints)
    rounds = 0
    while True:
        rounds += 1
        e = checkpoint(small_star(large_star(e)), reliable_checkpoints)
        if is_stars(e):
            break
    labels = e.select(F.col("u").alias("id"), F.col("v").alias("root"))
    centres = e.select(F.col("v").alias("id"), F.col("v").alias("root")).distinct()
    return labels.union(centres), rounds


def cluster(ds: Dataset, out: str, reliable_checkpoints: bool) -> dict:
    """The multi-input clustering of src/cluster/mod.rs (`cluster bitcoin --heuristics
    multi-input`): for each transaction that is neither a coinbase nor a CoinJoin, the
    addresses of the outputs it spends are one owner's. Inputs without an address are left
    out of the link (not of the CoinJoin rule's input count)."""
    timings = {}
    t = time.monotonic()
    ids = address_keys(ds).withColumnRenamed("key", "id").persist()
    ins = spent_inputs(ds).persist()
    cj = checkpoint(coinjoins(ds, ins), reliable_checkpoints)
    # A star per transaction, around its smallest input address: the same components as
    # chaintrace's links from the first input address to each other.
    linked = (
        ins.where(F.col("address").isNotNull())
        .join(cj, "txid", "left_anti")
        .join(ids, "address")
        .select("txid", "id")
        .withColumn("hub", F.min("id").over(Window.partitionBy("txid")))
    )
    edges = (
        linked.where(F.col("id") != F.col("hub"))
        .select(F.col("id").alias("u"), F.col("hub").alias("v"))
        .distinct()
    )
    edges = checkpoint(edges, reliable_checkpoints)
    timings["ids_coinjoins_edges"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    labels, rounds = components(edges, reliable_checkpoints)
    timings["components"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    reps = ids.select(F.col("id").alias("cluster_key"), F.col("address").alias("representative"))
    result = (
        ids.join(labels, "id", "left")
        .select("address", F.coalesce("root", "id").alias("cluster_key"))
        .join(reps, "cluster_key")
        .select("address", "representative", "cluster_key")
    )
    result.write.mode("overwrite").parquet(out)
    timings["write"] = round(time.monotonic() - t, 3)
    sizes = ds.spark.read.parquet(out).groupBy("cluster_key").count()
    totals = sizes.agg(
        F.sum("count").alias("addresses"),
        F.count(F.lit(1)).alias("clusters"),
        F.max("count").alias("largest"),
    ).first()
    by_kind = {r["kind"]: r["count"] for r in cj.groupBy("kind").count().collect()}
    summary = {
        "out": out,
        "addresses": totals["addresses"] or 0,
        "clusters": totals["clusters"],
        "largest": totals["largest"] or 0,
        "coinjoins": dict(sorted(by_kind.items())),
        "rounds": rounds,
        "timings": timings,
    }
    for df in (ids, ins):
        df.unpersist()
    return summary


# --- stats flows -----------------------------------------------------------------------------


def resolved_tags(ds: Dataset, data_root: str, network: str, include_private: bool) -> DataFrame:
    """(address, entity, category): the one tag in use per address after chaintrace's
    precedence (src/labels/precedence.rs) without --prefer: confidence level, lastmod
    (newer first, undated last), then content (a tag with a category first; category,
    entity, label, source in byte order), then file and line."""
    tags = ds.spark.read.parquet(f"{data_root}/labels/tags.parquet").where(
        F.col("chain") == "bitcoin"
    )
    if not include_private:
        tags = tags.where(F.col("is_public"))
    # Which tags apply to this network (src/labels/mod.rs on_network): base58 test-network
    # and regtest addresses look alike, so such a tag matches both.
    n, a = F.col("network"), F.col("address")
    if network == "bitcoin":
        tags = tags.where(n == "bitcoin")
    elif network == "regtest":
        tags = tags.where((n == "regtest") | ((n == "testnet") & ~a.startswith("tb1")))
    elif network in ("testnet", "testnet4", "signet"):
        tags = tags.where((n == "testnet") | ((n == "regtest") & ~a.startswith("bcrt1")))
    level = F.lit(0)
    for cid, lv in CONFIDENCE.items():
        level = F.when(F.lower(F.trim("confidence")) == cid, F.lit(lv)).otherwise(level)
    recency = F.datediff(F.to_date("lastmod", "yyyy-MM-dd"), F.lit("1970-01-01").cast("date"))
    order = [
        level.desc(),
        recency.desc_nulls_last(),
        (F.trim("category") == "").asc(),
        F.col("category").asc(),
        F.col("entity").asc(),
        F.col("label").asc(),
        F.col("source").asc(),
        F.col("file").asc(),
        F.col("line").asc(),
    ]
    best = F.row_number().over(Window.partitionBy("address").orderBy(*order))
    chosen = tags.withColumn("_rank", best).where("_rank = 1")
    return chosen.select("address", "entity", "category")


def period_expr(by: str) -> F.Column:
    """The period's name, from the block time truncated in UTC as chaintrace's
    `dt.truncate` (weeks start on Monday): YYYY-MM-DD for days and weeks, YYYY-MM for months,
    YYYY for years."""
    pattern = {"day": "yyyy-MM-dd", "week": "yyyy-MM-dd", "month": "yyyy-MM", "year": "yyyy"}[by]
    return F.date_format(F.date_trunc(by, F.col("time")), pattern)


def flows(
    ds: Dataset,
    out: str | None,
    data_root: str,
    network: str,
    cats: list[str],
    by: str,
    include_private: bool,
) -> dict:
    """`stats flows` (src/stats/mod.rs). A receipt is an output paid to one of an entity's
    addresses by a transaction none of whose inputs is the entity's; its payer is the
    address of the transaction's input 0. A sending is an output, to an address not the
    entity's, of a transaction all of whose (addressed) inputs are the entity's."""
    ents_all = resolved_tags(ds, data_root, network, include_private).persist()
    have = sorted(r[0] for r in ents_all.select("category").distinct().collect())
    for c in cats:
        if c not in have:
            raise SystemExit(
                f"no label has the category {c!r}; the labels have: {', '.join(have) or 'none'}"
            )
    ents = ents_all.where(F.col("category").isin(cats))
    hidden = [c for c in have if is_sensitive(c) and c not in cats]
    named = [c for c in cats if is_sensitive(c)]

    outs = (
        ds.table("outputs")
        .select("height", "txid", "value", "address")
        .where(F.col("address").isNotNull())
    )
    ins = ds.table("inputs").select("txid", "vin", "address").where(F.col("address").isNotNull())
    blocks = ds.table("blocks").select("height", "time")
    period = period_expr(by).alias("period")

    # Receipts.
    funded = ins.join(ents, "address").select("txid", "entity").distinct()
    payer = ins.where(F.col("vin") == 0).select("txid", F.col("address").alias("payer"))
    payer_cat = ents_all.select(
        F.col("address").alias("payer"), F.col("category").alias("from_category")
    )
    rec = (
        outs.join(ents, "address")
        .join(funded, ["txid", "entity"], "left_anti")
        .join(payer, "txid", "left")
        .join(payer_cat, "payer", "left")
        .fillna("unlabelled", ["from_category"])
        .join(blocks, "height")
        .select(period, "entity", "category", "from_category", "value", "payer")
    )
    # Sendings.
    n_in = ins.groupBy("txid").agg(F.count(F.lit(1)).alias("n_in"))
    alone = (
        ins.join(ents, "address")
        .groupBy("txid", "entity")
        .agg(F.count(F.lit(1)).alias("k_in"))
        .join(n_in, "txid")
        .where(F.col("k_in") == F.col("n_in"))
        .select("txid", "entity")
    )
    to = ents_all.select(
        "address", F.col("entity").alias("to_entity"), F.col("category").alias("to_category")
    )
    # A sending's category: that of the entity's address spent by input 0.
    first_cat = (
        ins.where(F.col("vin") == 0)
        .select("txid", "address")
        .join(ents.select("address", "entity", "category"), "address")
        .select("txid", "entity", "category")
    )
    send = (
        outs.join(alone, "txid")
        .join(to, "address", "left")
        .where(F.col("to_entity").isNull() | (F.col("to_entity") != F.col("entity")))
        .fillna("unlabelled", ["to_category"])
        .join(first_cat, ["txid", "entity"])
        .join(blocks, "height")
        .select(period, "entity", "category", "to_category", "value")
    )
    # Need-to-know categories: a counterparty's such label reads need_to_know unless its
    # category is named; a named one is reported as aggregates only (its entities merged
    # under the category's name, cells of fewer than MIN_CELL payments left out).
    def mask(c: str) -> F.Column:
        return F.when(F.col(c).isin(hidden), F.lit(NEED_TO_KNOW)).otherwise(F.col(c)).alias(c)

    merged = F.when(F.col("category").isin(named), F.col("category")).otherwise(F.col("entity"))
    rec = rec.withColumn("from_category", mask("from_category")).withColumn("entity", merged)
    send = send.withColumn("to_category", mask("to_category")).withColumn("entity", merged)

    # Distinct payer addresses: an unknown payer (input 0 without an address) is not one.
    payers = F.countDistinct("payer")
    inflows = rec.groupBy("period", "entity", "category", "from_category").agg(
        F.sum("value").alias("received"),
        F.count(F.lit(1)).alias("payments"),
        payers.alias("payers"),
    )
    outflows = send.groupBy("period", "entity", "category", "to_category").agg(
        F.sum("value").alias("sent"), F.count(F.lit(1)).alias("transfers")
    )
    small_in = F.col("category").isin(named) & (F.col("payments") < MIN_CELL)
    small_out = F.col("category").isin(named) & (F.col("transfers") < MIN_CELL)
    inflows = inflows.where(~small_in).orderBy("period", "entity", "from_category")
    outflows = outflows.where(~small_out).orderBy("period", "entity", "to_category")
    if out:
        inflows.write.mode("overwrite").parquet(f"{out}/inflows")
        outflows.write.mode("overwrite").parquet(f"{out}/outflows")
    result = {
        "inflows": [r.asDict() for r in inflows.collect()],
        "outflows": [r.asDict() for r in outflows.collect()],
    }
    ents_all.unpersist()
    return result


# --- Command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the chain directory DATA/<network>")
    p.add_argument("--cluster", metavar="OUT", help="write the multi-input clustering here")
    p.add_argument(
        "--flows", metavar="OUT", nargs="?", const="", help="stats flows (written to OUT if given)"
    )
    p.add_argument("--category", default="", help="label categories of --flows, comma-separated")
    p.add_argument("--by", default="month", choices=["day", "week", "month", "year"])
    p.add_argument("--include-private", action="store_true", help="use non-public tags too")
    p.add_argument(
        "--labels",
        metavar="DATA",
        help="the dataset directory holding labels/tags.parquet (default: the parent of --data)",
    )
    p.add_argument("--master", help="Spark master when not run by spark-submit (e.g. local[2])")
    p.add_argument("--partitions", type=int, help="spark.sql.shuffle.partitions")
    p.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting when not run by spark-submit (repeatable)",
    )
    p.add_argument(
        "--checkpoint-dir",
        help="reliable checkpoints of the component rounds (on a cluster: an HDFS or S3 "
        "path); default: checkpoints kept by the executors",
    )
    a = p.parse_args(argv)
    if a.cluster is None and a.flows is None:
        p.error("nothing to do: give --cluster OUT and/or --flows [OUT] --category C")
    cats = [c.strip() for c in a.category.split(",") if c.strip()]
    if a.flows is not None and not cats:
        p.error("--flows needs --category (at least one label category)")

    b = SparkSession.builder.appName("chaintrace-spark")
    if a.master:
        b = b.master(a.master).config("spark.ui.enabled", "false")
    b = b.config("spark.ui.showConsoleProgress", "false")
    # Periods are UTC calendar periods, as chaintrace's.
    b = b.config("spark.sql.session.timeZone", "UTC")
    if a.partitions:
        b = b.config("spark.sql.shuffle.partitions", str(a.partitions))
    for kv in a.conf:
        k, sep, v = kv.partition("=")
        if not sep:
            p.error(f"--conf {kv!r}: expected KEY=VALUE")
        b = b.config(k, v)
    spark = b.getOrCreate()
    # Spark's INFO log prints every plan it checkpoints: megabytes on stderr per round.
    spark.sparkContext.setLogLevel("WARN")
    if a.checkpoint_dir:
        spark.sparkContext.setCheckpointDir(a.checkpoint_dir)
    ds = Dataset(spark, a.data)
    network = ds.manifest.get("network", "bitcoin")
    data_root = a.labels or ds.chain.rsplit("/", 1)[0]
    result: dict = {"network": network}
    t0 = time.monotonic()
    if a.cluster is not None:
        result["cluster"] = cluster(ds, a.cluster, a.checkpoint_dir is not None)
        result["cluster"]["elapsed_secs"] = round(time.monotonic() - t0, 3)
    if a.flows is not None:
        t1 = time.monotonic()
        result["flows"] = flows(
            ds, a.flows or None, data_root, network, cats, a.by, a.include_private
        )
        result["flows"]["elapsed_secs"] = round(time.monotonic() - t1, 3)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
