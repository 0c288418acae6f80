# Cloister on GCP: confidential VMs (SEV-SNP or TDX) in two instance groups behind a TCP proxy
# load balancer. Nodes hold no cloud credentials and call no cloud API: everything a node needs
# comes from its instance metadata (lib/metadata reads the cloister-* keys).

provider "google" {
  project = var.project
  region  = var.region
  zone    = var.zone
  # Every resource that takes labels carries the cluster's uid: the manual clean-up filter.
  default_labels = {
    cloister-uid = local.uid
  }
}

resource "random_id" "uid" {
  byte_length = 4
}

locals {
  uid  = random_id.uid.hex
  name = "${var.name}-${local.uid}"
  # Per TEE: the GCP confidential instance type, the CPU platform it needs, the machine
  # families that offer it and the guest OS feature an image must declare for it.
  tee_settings = {
    snp = {
      instance_type    = "SEV_SNP"
      min_cpu_platform = "AMD Milan"
      machine_families = "^n2d-"
      image_feature    = "SEV_SNP_CAPABLE"
    }
    tdx = {
      instance_type    = "TDX"
      min_cpu_platform = null
      machine_families = "^c3-"
      image_feature    = "TDX_CAPABLE"
    }
  }
  tee = local.tee_settings[var.tee]
  # The ports a node serves through the load balancer, and nothing else from outside.
  ports = {
    api          = 6443
    bootstrapper = 9000
  }
  endpoint = module.load_balancer.address
}

# Refusals that need more than one variable (Terraform before 1.9 cannot compare variables in
# a validation block): checked at plan, before anything is created.
resource "terraform_data" "checks" {
  input = var.tee
  lifecycle {
    precondition {
      condition     = length(var.control_plane_authorizations) == 0 || length(var.control_plane_authorizations) == var.control_plane_count - 1
      error_message = "control_plane_authorizations: one per further control plane (control_plane_count - 1), or none before the cluster ID is known."
    }
    precondition {
      condition     = (var.image_id == "") != (var.image_file == "")
      error_message = "Set exactly one of image_id (an image already registered) and image_file (the image built here, to upload)."
    }
    precondition {
      condition     = can(regex(local.tee.machine_families, var.control_plane_instance_type)) && can(regex(local.tee.machine_families, var.worker_instance_type))
      error_message = "The instance types do not offer tee = \"${var.tee}\" on GCP: snp needs n2d-* (AMD Milan or later), tdx needs c3-*."
    }
  }
}

module "network" {
  source    = "./modules/network"
  name      = local.name
  region    = var.region
  node_cidr = var.node_cidr
  pod_cidr  = var.pod_cidr
  ports     = values(local.ports)
}

module "image" {
  source     = "./modules/image"
  count      = var.image_file == "" ? 0 : 1
  name       = local.name
  region     = var.region
  image_file = var.image_file
  tee        = var.tee
}

module "load_balancer" {
  source          = "./modules/load_balancer"
  name            = local.name
  ports           = local.ports
  instance_groups = concat([module.control_plane.instance_group], module.control_plane_nodes.instance_groups)
}

# The first control plane (cloister apply initialises it); the further ones are named nodes
# (control_plane_nodes).
module "control_plane" {
  source           = "./modules/node_group"
  name             = "${local.name}-control-plane"
  role             = "control-plane"
  zone             = var.zone
  instance_type    = var.control_plane_instance_type
  node_count       = 1
  image            = var.image_file == "" ? var.image_id : module.image[0].image_id
  tee              = local.tee
  subnetwork       = module.network.subnetwork
  network_tag      = module.network.node_tag
  boot_disk_gb     = var.boot_disk_size_gb
  state_disk_gb    = var.state_disk_size_gb
  named_ports      = local.ports
  health_check_ids = [module.load_balancer.health_check_ids["bootstrapper"]]
  metadata = {
    cloister-role             = "control-plane"
    cloister-endpoint         = "${local.endpoint}:${local.ports.api}"
    cloister-init-secret-hash = var.init_secret_hash
  }
  depends_on = [terraform_data.checks]
}

# The further control planes join the first through the load balancer's join-service port,
# each under the name its authorization names; like workers, they wait for the cluster ID.
module "control_plane_nodes" {
  source      = "./modules/control_plane_nodes"
  nodes       = var.cluster_id == "" ? {} : var.control_plane_authorizations
  group_name  = "${local.name}-control-plane-named"
  zone        = var.zone
  template    = module.control_plane.template
  named_ports = local.ports
  metadata = {
    cloister-role             = "control-plane"
    cloister-endpoint         = "${local.endpoint}:${local.ports.api}"
    cloister-peers            = "${local.endpoint}:${local.ports.bootstrapper}"
    cloister-cluster-id       = var.cluster_id
    cloister-init-secret-hash = var.init_secret_hash
  }
  depends_on = [terraform_data.checks]
}

module "worker" {
  source        = "./modules/node_group"
  name          = "${local.name}-worker"
  role          = "worker"
  zone          = var.zone
  instance_type = var.worker_instance_type
  # A joining node refuses to start without the cluster ID: workers wait for it.
  node_count = var.cluster_id == "" ? 0 : var.worker_count
  # A roll moves the workers first (worker_image_id), then the control plane (image_id).
  image            = var.worker_image_id != "" ? var.worker_image_id : var.image_file == "" ? var.image_id : module.image[0].image_id
  tee              = local.tee
  subnetwork       = module.network.subnetwork
  network_tag      = module.network.node_tag
  boot_disk_gb     = var.boot_disk_size_gb
  state_disk_gb    = var.state_disk_size_gb
  named_ports      = {}
  health_check_ids = []
  metadata = {
    cloister-role             = "worker"
    cloister-endpoint         = "${local.endpoint}:${local.ports.api}"
    cloister-peers            = "${local.endpoint}:${local.ports.bootstrapper}"
    cloister-cluster-id       = var.cluster_id
    cloister-init-secret-hash = var.init_secret_hash
  }
  depends_on = [terraform_data.checks]
}
