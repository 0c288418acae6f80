# The variables `cloister create` writes into terraform.tfvars.json. Every one is checked here:
# a value Terraform would accept but a confidential cluster must not have is refused before
# anything is created.

variable "name" {
  type        = string
  description = "Cluster name: the prefix of every resource (lowercase letters, digits, '-')."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name: 1 to 20 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "project" {
  type        = string
  description = "GCP project ID."
}

variable "region" {
  type        = string
  description = "GCP region, e.g. europe-west4."
}

variable "zone" {
  type        = string
  description = "GCP zone inside region that offers the TEE's machine types, e.g. europe-west4-a."
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone: a GCP zone such as europe-west4-a."
  }
}

variable "tee" {
  type        = string
  description = "Trusted execution environment of every node: snp (AMD SEV-SNP) or tdx (Intel TDX)."
  validation {
    condition     = contains(["snp", "tdx"], var.tee)
    error_message = "tee: snp or tdx. Cloister creates confidential VMs only."
  }
}

variable "control_plane_instance_type" {
  type        = string
  description = "Machine type of the control-plane nodes: n2d-* for snp, c3-standard-* for tdx."
  validation {
    condition     = can(regex("^(n2d-(standard|highmem|highcpu)-[0-9]+|c3-(standard|highmem|highcpu)-[0-9]+)$", var.control_plane_instance_type))
    error_message = "control_plane_instance_type: not a confidential machine type. Use n2d-standard-N (SEV-SNP) or c3-standard-N (TDX)."
  }
}

variable "worker_instance_type" {
  type        = string
  description = "Machine type of the worker nodes: n2d-* for snp, c3-standard-* for tdx."
  validation {
    condition     = can(regex("^(n2d-(standard|highmem|highcpu)-[0-9]+|c3-(standard|highmem|highcpu)-[0-9]+)$", var.worker_instance_type))
    error_message = "worker_instance_type: not a confidential machine type. Use n2d-standard-N (SEV-SNP) or c3-standard-N (TDX)."
  }
}

variable "control_plane_count" {
  type        = number
  description = "Control-plane nodes, odd (etcd needs a majority): the first, which 'cloister apply' initialises, and the further ones, created with their authorizations once cluster_id is set."
  default     = 1
  validation {
    condition     = contains([1, 3, 5], var.control_plane_count)
    error_message = "control_plane_count: 1, 3 or 5 (odd: etcd keeps a majority; 3 survives one failed control plane, 5 two)."
  }
}

variable "worker_count" {
  type        = number
  description = "Worker nodes, created once cluster_id is set (after 'cloister apply')."
  default     = 1
  validation {
    condition     = var.worker_count >= 0 && var.worker_count <= 100 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count: a whole number from 0 to 100."
  }
}

variable "state_disk_size_gb" {
  type        = number
  description = "Size of each node's encrypted state disk."
  default     = 30
  validation {
    condition     = var.state_disk_size_gb >= 10 && var.state_disk_size_gb <= 16384
    error_message = "state_disk_size_gb: 10 to 16384."
  }
}

variable "boot_disk_size_gb" {
  type        = number
  description = "Size of each node's boot disk (the read-only image)."
  default     = 10
}

variable "image_id" {
  type        = string
  description = "An existing image (projects/P/global/images/I) registered with the TEE's guest OS features; empty to upload image_file."
  default     = ""
}

variable "worker_image_id" {
  type        = string
  description = "During 'cloister upgrade apply': the image the workers move to first (projects/P/global/images/I), before the control plane; empty: the workers run the cluster's image (image_id or image_file)."
  default     = ""
}

variable "image_file" {
  type        = string
  description = "The image built here (cloister-gcp.tar.gz: disk.raw alone in a gzipped tar) to upload; empty to use image_id."
  default     = ""
}

variable "init_secret_hash" {
  type        = string
  description = "Hash of the owner's init secret (cloister init-secret hash): the first node accepts init only with the secret. The secret itself never reaches Terraform."
  validation {
    condition     = can(regex("^scrypt\\$[0-9]{2}\\$[0-9]\\$[0-9]\\$[0-9a-f]{32}\\$[0-9a-f]{64}$", var.init_secret_hash))
    error_message = "init_secret_hash: scrypt$<log2 N>$<r>$<p>$<salt>$<hash>, as 'cloister init-secret hash' prints it."
  }
}

variable "cluster_id" {
  type        = string
  description = "The cluster ID 'cloister apply' printed (64 hex digits). Empty until then: workers are created only once it is known, since a joining node must know which cluster to trust."
  default     = ""
  validation {
    condition     = var.cluster_id == "" || can(regex("^[0-9a-f]{64}$", var.cluster_id))
    error_message = "cluster_id: empty or 64 lowercase hex digits (as 'cloister apply' prints it)."
  }
}

variable "control_plane_authorizations" {
  type        = map(string)
  description = "The further control planes (all but the first), created once cluster_id is set: node name => the owner's authorization for that name (cloister/v1/control-plane-authorization, made by 'cloister create --workers' from the master secret). Empty until then."
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.control_plane_authorizations : can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", k)) && can(regex("^cpa1\\.${k}\\.[1-9][0-9]{0,17}\\.[0-9a-f]{64}$", v))])
    error_message = "control_plane_authorizations: node name (a DNS-1123 label) => an authorization for exactly that name, cpa1.NAME.NOT_AFTER.TAG, as 'cloister create --workers' makes it."
  }
}

variable "node_cidr" {
  type        = string
  description = "Subnet of the nodes."
  default     = "10.10.0.0/20"
}

variable "pod_cidr" {
  type        = string
  description = "Pod network (the CNI's), allowed between nodes."
  default     = "10.244.0.0/16"
}
