# The image built here, uploaded and registered with the guest OS features a confidential VM
# needs (GCP refuses confidential_instance_config on an image without them).

variable "name" {
  type = string
}

variable "region" {
  type = string
}

variable "image_file" {
  type        = string
  description = "disk.raw alone in a gzipped tar (make image writes it)."
  validation {
    condition     = endswith(var.image_file, ".tar.gz")
    error_message = "image_file: a .tar.gz holding disk.raw alone, as GCP imports it."
  }
}

variable "tee" {
  type = string
}

resource "google_storage_bucket" "images" {
  name                        = "${var.name}-images"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
}

resource "google_storage_bucket_object" "image" {
  name   = "${var.name}.tar.gz"
  bucket = google_storage_bucket.images.name
  source = var.image_file
}

resource "google_compute_image" "image" {
  name = var.name
  raw_disk {
    source = "https://storage.googleapis.com/${google_storage_bucket.images.name}/${google_storage_bucket_object.image.name}"
  }
  dynamic "guest_os_features" {
    for_each = toset(["UEFI_COMPATIBLE", "GVNIC", "VIRTIO_SCSI_MULTIQUEUE", var.tee == "snp" ? "SEV_SNP_CAPABLE" : "TDX_CAPABLE"])
    content {
      type = guest_os_features.value
    }
  }
}

output "image_id" {
  value = google_compute_image.image.id
}
