# Cloister on Azure: confidential VMs (SEV-SNP or TDX: the VM size decides) in two scale sets
# behind a standard load balancer. Nodes hold no cloud credentials (no managed identity) and call
# no cloud API: everything a node needs comes from its scale set's tags, which the instance
# metadata service shows it (lib/metadata reads the cloister-* keys from compute.tagsList).

provider "azurerm" {
  subscription_id = var.subscription_id
  # Only the resource providers Azure itself needs for these resources are registered, not
  # every one (which needs rights users often lack).
  resource_provider_registrations = "core"
  features {
    resource_group {
      # Azure puts resources of its own into the group; terminate must still delete it.
      prevent_deletion_if_contains_resources = false
    }
  }
}

resource "random_id" "uid" {
  byte_length = 4
}

locals {
  uid  = random_id.uid.hex
  name = "${var.name}-${local.uid}"
  tags = {
    cloister-uid = local.uid
  }
  # Azure's confidential VM sizes: the size decides the TEE, the settings are the same.
  tee_sizes = {
    snp = "^Standard_(DC|EC)[0-9]+(a|ad)s_v5$"
    tdx = "^Standard_(DC|EC)[0-9]+(e|ed)s_v5$"
  }
  ports = {
    api          = 6443
    bootstrapper = 9000
  }
  endpoint = module.load_balancer.address
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
      error_message = "Set exactly one of image_id (a gallery image version) and image_file (the VHD built here, to upload)."
    }
    precondition {
      condition     = can(regex(local.tee_sizes[var.tee], var.control_plane_instance_type)) && can(regex(local.tee_sizes[var.tee], var.worker_instance_type))
      error_message = "The VM sizes do not offer tee = \"${var.tee}\" on Azure: snp needs Standard_DCas_v5/ECas_v5 sizes, tdx Standard_DCes_v5/ECes_v5."
    }
  }
}

resource "azurerm_resource_group" "cluster" {
  name     = local.name
  location = var.location
  tags     = local.tags
}

module "network" {
  source         = "./modules/network"
  name           = local.name
  location       = var.location
  resource_group = azurerm_resource_group.cluster.name
  node_cidr      = var.node_cidr
  ports          = values(local.ports)
  tags           = local.tags
}

module "load_balancer" {
  source         = "./modules/load_balancer"
  name           = local.name
  location       = var.location
  resource_group = azurerm_resource_group.cluster.name
  ports          = local.ports
  tags           = local.tags
}

module "image" {
  source         = "./modules/image"
  count          = var.image_file == "" ? 0 : 1
  name           = local.name
  uid            = local.uid
  location       = var.location
  resource_group = azurerm_resource_group.cluster.name
  image_file     = var.image_file
  tags           = local.tags
}

# The first control plane (cloister apply initialises it); the further ones are named nodes
# (control_plane_nodes).
module "control_plane" {
  source         = "./modules/scale_set"
  name           = "${local.name}-control-plane"
  location       = var.location
  resource_group = azurerm_resource_group.cluster.name
  zone           = var.zone
  instance_type  = var.control_plane_instance_type
  # The first control plane; the further ones are named VMs (control_plane_nodes).
  node_count      = 1
  image_id        = var.image_file == "" ? var.image_id : module.image[0].image_id
  subnet_id       = module.network.subnet_id
  backend_pool_id = module.load_balancer.backend_pool_id
  state_disk_gb   = var.state_disk_size_gb
  tags            = local.tags
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
  source          = "./modules/control_plane_nodes"
  nodes           = var.cluster_id == "" ? {} : var.control_plane_authorizations
  location        = var.location
  resource_group  = azurerm_resource_group.cluster.name
  zone            = var.zone
  instance_type   = var.control_plane_instance_type
  image_id        = var.image_file == "" ? var.image_id : module.image[0].image_id
  subnet_id       = module.network.subnet_id
  backend_pool_id = module.load_balancer.backend_pool_id
  state_disk_gb   = var.state_disk_size_gb
  tags            = local.tags
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
  source          = "./modules/scale_set"
  name            = "${local.name}-worker"
  location        = var.location
  resource_group  = azurerm_resource_group.cluster.name
  zone            = var.zone
  instance_type   = var.worker_instance_type
  node_count      = var.cluster_id == "" ? 0 : var.worker_count
  image_id        = var.image_file == "" ? var.image_id : module.image[0].image_id
  subnet_id       = module.network.subnet_id
  backend_pool_id = ""
  state_disk_gb   = var.state_disk_size_gb
  tags            = local.tags
  metadata = {
    cloister-role             = "worker"
    cloister-endpoint         = "${local.endpoint}:${local.ports.api}"
    cloister-peers            = "${local.endpoint}:${local.ports.bootstrapper}"
    cloister-cluster-id       = var.cluster_id
    cloister-init-secret-hash = var.init_secret_hash
  }
  depends_on = [terraform_data.checks]
}
