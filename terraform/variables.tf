variable "project_id" {
  description = "GCP project that holds everything."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 chars, lowercase, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the cluster, bucket, Cloud SQL and Kafka (one region: no cross-region traffic)."
  type        = string
  default     = "europe-west4"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like europe-west4 or us-central1."
  }
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "candleflow"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,18}$", var.name))
    error_message = "name: 3-19 chars, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the Candleflow release."
  type        = string
  default     = "candleflow"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace)) && length(var.namespace) <= 63
    error_message = "namespace must be a DNS-1123 label."
  }
}

variable "node_machine_type" {
  description = "Machine type of the GKE node pool."
  type        = string
  default     = "e2-standard-4"
}

variable "node_count_min" {
  description = "Minimum nodes per zone of the node pool."
  type        = number
  default     = 1
  validation {
    condition     = var.node_count_min >= 1 && var.node_count_min <= 10
    error_message = "node_count_min must be between 1 and 10."
  }
}

variable "node_count_max" {
  description = "Maximum nodes per zone of the node pool."
  type        = number
  default     = 3
  validation {
    condition     = var.node_count_max >= 1 && var.node_count_max <= 50
    error_message = "node_count_max must be between 1 and 50."
  }
}

variable "node_zones" {
  description = "Zones of the node pool (one zone keeps cost down; three for zone failure)."
  type        = list(string)
  default     = ["europe-west4-a"]
  validation {
    condition     = length(var.node_zones) >= 1 && length(var.node_zones) <= 3
    error_message = "node_zones: one to three zones."
  }
}

variable "sql_tier" {
  description = "Cloud SQL machine tier of the Iceberg catalog (it holds only table metadata pointers)."
  type        = string
  default     = "db-custom-1-3840"
  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|f1-micro|g1-small|perf-optimized-N-[0-9]+)$", var.sql_tier))
    error_message = "sql_tier must be a Cloud SQL tier such as db-custom-1-3840."
  }
}

variable "sql_high_availability" {
  description = "REGIONAL Cloud SQL (standby in a second zone) instead of ZONAL."
  type        = bool
  default     = false
}

variable "kafka_vcpus" {
  description = "vCPUs of the managed Kafka cluster (minimum 3)."
  type        = number
  default     = 3
  validation {
    condition     = var.kafka_vcpus >= 3
    error_message = "Managed Service for Apache Kafka needs at least 3 vCPUs."
  }
}

variable "kafka_memory_gib" {
  description = "Memory of the managed Kafka cluster, GiB (1 to 8 GiB per vCPU)."
  type        = number
  default     = 12
  validation {
    condition     = var.kafka_memory_gib >= 3
    error_message = "kafka_memory_gib must be at least 3 (1 GiB per vCPU minimum)."
  }
}

variable "kafka_topics" {
  description = "Topics: partitions, retention (ms; -1 = forever) and cleanup.policy, as adapters/topics.py (why: docs/semantics.md)."
  type = map(object({
    partitions     = number
    retention_ms   = number
    cleanup_policy = string
  }))
  default = {
    "trades.v1"       = { partitions = 6, retention_ms = 604800000, cleanup_policy = "delete" }
    "trades.late.v1"  = { partitions = 3, retention_ms = 2592000000, cleanup_policy = "delete" }
    "candles.v1"      = { partitions = 6, retention_ms = 2592000000, cleanup_policy = "delete" }
    "ingest.rejects"  = { partitions = 1, retention_ms = 604800000, cleanup_policy = "delete" }
    "anomalies.v1"    = { partitions = 3, retention_ms = 2592000000, cleanup_policy = "delete" }
    "explanations.v1" = { partitions = 3, retention_ms = 2592000000, cleanup_policy = "compact,delete" }
  }
  validation {
    condition     = alltrue([for t in values(var.kafka_topics) : t.partitions >= 1 && t.partitions <= 1000])
    error_message = "every topic needs 1 to 1000 partitions."
  }
  validation {
    condition     = alltrue([for t in values(var.kafka_topics) : contains(["delete", "compact,delete"], t.cleanup_policy)])
    error_message = "cleanup_policy is \"delete\" or \"compact,delete\" (a compact-only topic never ages out)."
  }
}

variable "bucket_location" {
  description = "GCS location of the lake bucket (same region as the cluster avoids egress)."
  type        = string
  default     = "EUROPE-WEST4"
}

variable "checkpoint_retention_days" {
  description = "Days after which Flink checkpoint and HA objects are deleted (savepoints are kept)."
  type        = number
  default     = 7
  validation {
    condition     = var.checkpoint_retention_days >= 1
    error_message = "checkpoint_retention_days must be at least 1."
  }
}

variable "master_authorized_cidr" {
  description = "CIDR allowed to reach the GKE control plane (your office / CI runner)."
  type        = string
  validation {
    condition     = can(cidrhost(var.master_authorized_cidr, 0))
    error_message = "master_authorized_cidr must be a CIDR such as 203.0.113.0/24."
  }
}

variable "chart_values_file" {
  description = "Values file of the Candleflow chart, merged under the values Terraform knows."
  type        = string
  default     = "../helm/candleflow/values-production.yaml"
}

variable "image_tag" {
  description = "Version tag of the candleflow job and services images (never latest)."
  type        = string
  default     = "0.1.0"
  validation {
    condition     = var.image_tag != "latest" && can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a pinned version, not latest."
  }
}

variable "cert_manager_version" {
  description = "cert-manager chart version (the operator's webhook needs it)."
  type        = string
  default     = "v1.16.2"
}

variable "flink_operator_version" {
  description = "Flink Kubernetes Operator chart version."
  type        = string
  default     = "1.15.0"
  validation {
    condition     = can(regex("^1\\.(1[3-9]|[2-9][0-9])\\.[0-9]+$", var.flink_operator_version))
    error_message = "Flink 2.1 (flinkVersion v2_1) needs operator 1.13 or newer."
  }
}
