# Cloister on AWS: SEV-SNP instances in two auto scaling groups behind a network load balancer.
# Nodes hold no cloud credentials (no instance profile) and call no cloud API: everything a node
# needs comes from its instance tags, which the instance metadata service (IMDSv2, tags enabled)
# shows it (lib/metadata reads the cloister-* keys).

provider "aws" {
  region = var.region
  # Every resource that takes tags carries the cluster's uid: the manual clean-up filter.
  default_tags {
    tags = {
      cloister-uid = local.uid
    }
  }
}

resource "random_id" "uid" {
  byte_length = 4
}

locals {
  uid  = random_id.uid.hex
  name = "${var.name}-${local.uid}"
  ports = {
    api          = 6443
    bootstrapper = 9000
  }
  endpoint = module.load_balancer.dns_name
}

resource "terraform_data" "checks" {
  input = var.tee
  lifecycle {
    precondition {
      condition     = length(var.control_plane_authorizations) == 0 || length(var.control_plane_authorizations) == var.control_plane_count - 1
      error_message = "control_plane_authorizations: one per further control plane (control_plane_count - 1), or none before the cluster ID is known."
    }
    precondition {
      condition     = (var.image_id == "") != (var.image_file == "")
      error_message = "Set exactly one of image_id (an AMI with UEFI and TPM 2.0) and image_file (the raw image built here, to upload)."
    }
  }
}

module "network" {
  source   = "./modules/network"
  name     = local.name
  zone     = var.zone
  vpc_cidr = var.vpc_cidr
}

module "load_balancer" {
  source    = "./modules/load_balancer"
  name      = "cloister-${local.uid}"
  vpc_id    = module.network.vpc_id
  subnet_id = module.network.public_subnet_id
  ports     = local.ports
}

module "image" {
  source     = "./modules/image"
  count      = var.image_file == "" ? 0 : 1
  name       = local.name
  image_file = var.image_file
}

# The first control plane (cloister apply initialises it); the further ones are named nodes
# (control_plane_nodes).
module "control_plane" {
  source            = "./modules/node_group"
  name              = "${local.name}-control-plane"
  role              = "control-plane"
  instance_type     = var.control_plane_instance_type
  node_count        = 1
  image_id          = var.image_file == "" ? var.image_id : module.image[0].image_id
  subnet_id         = module.network.private_subnet_id
  security_group_id = module.network.security_group_id
  target_group_arns = values(module.load_balancer.target_group_arns)
  state_disk_gb     = var.state_disk_size_gb
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
  source             = "./modules/control_plane_nodes"
  nodes              = var.cluster_id == "" ? {} : var.control_plane_authorizations
  launch_template_id = module.control_plane.launch_template_id
  subnet_id          = module.network.private_subnet_id
  target_group_arns  = module.load_balancer.target_group_arns
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
  source            = "./modules/node_group"
  name              = "${local.name}-worker"
  role              = "worker"
  instance_type     = var.worker_instance_type
  node_count        = var.cluster_id == "" ? 0 : var.worker_count
  image_id          = var.image_file == "" ? var.image_id : module.image[0].image_id
  subnet_id         = module.network.private_subnet_id
  security_group_id = module.network.security_group_id
  target_group_arns = []
  state_disk_gb     = var.state_disk_size_gb
  metadata = {
    cloister-role             = "worker"
    cloister-endpoint         = "${local.endpoint}:${local.ports.api}"
    cloister-peers            = "${local.endpoint}:${local.ports.bootstrapper}"
    cloister-cluster-id       = var.cluster_id
    cloister-init-secret-hash = var.init_secret_hash
  }
  depends_on = [terraform_data.checks]
}
